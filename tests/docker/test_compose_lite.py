"""``docker compose -f compose.lite.yml up`` for real: the image this repository builds, every
service healthy, the platform working from the host's loopback, restarts and a down/up losing
nothing, and ``down -v`` leaving nothing of the project (see conftest.py for the engine)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.docker.conftest import (
    Stack,
    alert_lines,
    check_dag_run_writes_the_lake,
    check_platform_from_host,
    console_states,
    insert_bad_order,
    running_stack,
)
from tests.support.alerts_runner import wait_for

# the first test pays for the stack: a cold image build (up to 30 min, lite.docker_images)
# and `compose up --wait` (up to 20 min), beyond the suite's 900 s per test
pytestmark = [pytest.mark.docker, pytest.mark.timeout(3300)]


@pytest.fixture(scope="module")
def stack(engine: str) -> Iterator[Stack]:
    with running_stack(engine, "lite") as s:
        yield s


def test_every_service_is_healthy_and_the_platform_works_from_the_host(stack: Stack) -> None:
    states = stack.compose("ps", "-a", "--format", "{{.Service}} {{.State}} {{.Health}}")
    running = dict(line.split(" ", 1) for line in states.strip().splitlines())
    for name in ("postgres", "minio", "redis", "airflow"):
        assert running[name].strip() == "running healthy", running
    for name in ("dashboard", "api", "simulator", "alerts"):
        assert running[name].startswith("running"), running
    assert running["init"].startswith("exited") and running["secrets"].startswith("exited")

    check_platform_from_host(stack)


def test_a_dag_run_triggered_through_airflow_writes_the_lake(stack: Stack) -> None:
    check_dag_run_writes_the_lake(stack)


def test_an_alert_reaches_the_console_once_across_restarts(stack: Stack) -> None:
    first = f"DOCKER-{uuid.uuid4().hex[:6]}"
    insert_bad_order(stack, first)
    wait_for(lambda: alert_lines(stack, first), 120, "the alert on the console", interval=1)
    # the alerts process and then the database restart: nothing is lost or sent again
    stack.compose("restart", "alerts")
    stack.compose("restart", "postgres")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300")
    second = f"DOCKER-{uuid.uuid4().hex[:6]}"
    insert_bad_order(stack, second)
    wait_for(lambda: alert_lines(stack, second), 180, "the second alert", interval=1)
    # printed once each (the restarted container keeps its earlier output)
    assert [a["alert_type"] for a in alert_lines(stack, first)] == ["INVALID_QUANTITY"]
    assert [a["alert_type"] for a in alert_lines(stack, second)] == ["INVALID_QUANTITY"]
    assert console_states(stack, first) == console_states(stack, second) == ["delivered"]
    stack.first_alert = first


def test_down_and_up_keep_the_data(stack: Stack) -> None:
    with psycopg.connect(stack.dsn()) as conn:
        before = conn.execute("SELECT count(*) FROM orders").fetchone()
    model = httpx.get(stack.url("API", "/health"), timeout=10).json()["model_version"]
    gold = "SELECT date, total_orders, total_revenue FROM daily_summary ORDER BY date"
    lake = stack.compose("exec", "-T", "api", "shoplake", "sql", gold)
    stack.compose("down")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "600", timeout=900)
    # the lake's gold days are all still there, with the same numbers (a new day may join)
    after = stack.compose("exec", "-T", "api", "shoplake", "sql", gold)
    days = [ln for ln in lake.splitlines() if ln[:4].isdigit()]
    assert len(days) >= 20 and set(days) <= set(after.splitlines()), (lake, after)
    with psycopg.connect(stack.dsn()) as conn:
        after = conn.execute("SELECT count(*) FROM orders").fetchone()
    assert before and after and after[0] >= before[0]
    assert httpx.get(stack.url("API", "/health"), timeout=10).json()["model_version"] == model
    # the new alerts container resumes after what was delivered: nothing is printed again
    third = f"DOCKER-{uuid.uuid4().hex[:6]}"
    insert_bad_order(stack, third)
    wait_for(lambda: alert_lines(stack, third), 180, "an alert after down and up", interval=1)
    if stack.first_alert:
        assert alert_lines(stack, stack.first_alert) == []
        assert console_states(stack, stack.first_alert) == ["delivered"]


def test_restarting_any_server_or_front_end_keeps_the_platform_working(stack: Stack) -> None:
    for name in ("redis", "minio", "api", "dashboard"):
        stack.compose("restart", name)
        stack.compose("up", "-d", "--wait", "--wait-timeout", "300")
    check_platform_from_host(stack)
