"""``docker compose -f compose.full.yml up`` for real: the streaming side in containers.

The lite checks from the host (a live dashboard, recommendations, Airflow's UI, a DAG run
through its REST API); an order that breaks a rule goes PostgreSQL -> Debezium -> Kafka ->
Flink -> delivery and is printed on the alerts console exactly once; Trino answers the same
gold numbers as DuckDB; ``down -v`` leaves nothing (see conftest.py for the engine).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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

GOLD = "SELECT date, total_orders, total_revenue, unique_customers FROM daily_summary ORDER BY date"


@pytest.fixture(scope="module")
def stack(engine: str) -> Iterator[Stack]:
    with running_stack(engine, "full") as s:
        yield s


def test_every_service_is_healthy_and_the_one_shots_finished(stack: Stack) -> None:
    states = stack.compose("ps", "-a", "--format", "{{.Service}} {{.State}} {{.Health}}")
    running = dict(line.split(" ", 1) for line in states.strip().splitlines())
    for name in ("postgres", "minio", "redis", "airflow", "kafka", "connect", "trino"):
        assert running[name].strip() == "running healthy", running
    for name in ("flink-jobmanager", "flink-taskmanager"):
        assert running[name].strip() == "running healthy", running
    for name in ("secrets", "init", "connect-register", "flink-submit"):
        assert running[name].startswith("exited"), running
    logs = stack.compose("logs", "--no-log-prefix", "flink-submit", "connect-register")
    assert "cdc.public.orders -> flink-alerts" in logs
    check_platform_from_host(stack)


def test_a_dag_run_triggered_through_airflow_writes_the_lake(stack: Stack) -> None:
    check_dag_run_writes_the_lake(stack)


def test_an_alert_goes_through_debezium_kafka_and_flink_exactly_once(stack: Stack) -> None:
    order = f"DOCKER-FULL-{uuid.uuid4().hex[:6]}"
    insert_bad_order(stack, order)
    wait_for(lambda: alert_lines(stack, order), 180, "the alert from flink-alerts", interval=1)
    stack.compose("restart", "alerts")  # the delivery restarts: nothing is printed again
    later = f"DOCKER-FULL-{uuid.uuid4().hex[:6]}"
    insert_bad_order(stack, later)
    wait_for(lambda: alert_lines(stack, later), 180, "an alert after the restart", interval=1)
    assert [a["alert_type"] for a in alert_lines(stack, order)] == ["INVALID_QUANTITY"]
    assert console_states(stack, order) == ["delivered"]


def test_trino_answers_the_same_gold_numbers_as_duckdb(stack: Stack) -> None:
    duck = stack.compose("exec", "-T", "api", "shoplake", "sql", GOLD)
    trino = stack.compose("exec", "-T", "api", "shoplake", "sql", "--engine", "trino", GOLD)
    rows = [ln for ln in duck.splitlines() if ln[:4].isdigit()]
    assert len(rows) >= 20, duck  # the seeded month, caught up by init
    assert rows == [ln for ln in trino.splitlines() if ln[:4].isdigit()]
