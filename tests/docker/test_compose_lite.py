"""``docker compose -f compose.lite.yml up`` for real: the image this repository builds, every
service healthy, the platform working from the host's loopback, restarts and a down/up losing
nothing, and ``down -v`` leaving nothing of the project (see conftest.py for the engine)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.docker.conftest import (
    Stack,
    alert_lines,
    console_states,
    dashboard_is_live,
    insert_bad_order,
    running_stack,
)
from tests.support.alerts_runner import wait_for

pytestmark = pytest.mark.docker


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

    # the dashboard shows today's KPIs, pushed through Redis by Airflow's micro-batch DAG
    live = wait_for(lambda: dashboard_is_live(stack), 240, "a live dashboard", interval=2)
    assert live["status"] == "ok"
    # the API serves the first model
    health = httpx.get(stack.url("API", "/health"), timeout=10).json()
    assert health["status"] == "ok" and health["model_version"], health
    with psycopg.connect(stack.dsn()) as conn:
        row = conn.execute(
            "SELECT customer_id FROM orders GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    rec = httpx.get(stack.url("API", f"/recommend/{row[0]}?top_n=5"), timeout=10).json()
    assert rec["strategy"] == "personal" and len(rec["recommendations"]) == 5, rec
    # the Airflow UI answers on the host's loopback
    assert httpx.get(stack.url("AIRFLOW", "/api/v2/version"), timeout=10).status_code in (200, 401)


def test_a_dag_run_triggered_through_airflow_writes_the_lake(stack: Stack) -> None:
    login = stack.compose(
        "exec",
        "-T",
        "airflow",
        "cat",
        "/data/services/airflow/simple_auth_manager_passwords.json.generated",
    )
    password = json.loads(login)["admin"]
    base = stack.url("AIRFLOW")
    token = httpx.post(
        f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)  # not seeded: zero orders
    logical = dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()
    run = httpx.post(
        f"{base}/api/v2/dags/medallion_postgres_minio_pipeline/dagRuns",
        headers=headers,
        json={"logical_date": logical, "dag_run_id": f"test-{uuid.uuid4().hex[:8]}"},
        timeout=10,
    )
    assert run.status_code in (200, 201), run.text
    run_id = run.json()["dag_run_id"]

    def finished() -> str:
        state = httpx.get(
            f"{base}/api/v2/dags/medallion_postgres_minio_pipeline/dagRuns/{run_id}",
            headers=headers,
            timeout=10,
        ).json()["state"]
        return state if state in ("success", "failed") else ""

    assert wait_for(finished, 300, "the DAG run", interval=3) == "success"
    # the validation report of that day is in the lake, read through the platform's own SQL
    out = stack.compose(
        "exec",
        "-T",
        "api",
        "shoplake",
        "sql",
        f"SELECT total_orders FROM daily_summary WHERE date = DATE '{day}'",
    )
    assert "total_orders" in out and "0" in out, out


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
    stack.compose("down")
    stack.compose("up", "-d", "--wait", "--wait-timeout", "600", timeout=900)
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
