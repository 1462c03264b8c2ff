"""``docker compose -f compose.lite.yml up`` for real: the images this repository builds, every
service healthy, the platform working from the host's loopback, restarts and a down/up losing
nothing, and ``down -v`` leaving nothing of the project.

A Docker engine that answers is used as it is; as root, the harness starts a dockerd of its own
(data root in the engine cache, stopped by PID at the end). The Debian base image is made with
debootstrap where no registry answers. Where no engine can be had, the tests skip, saying why.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from jobs.errors import ServiceUnavailable
from lite import docker_images
from lite.services.docker_engine import DockerEngine, running_engine
from tests.conftest import settings_for_tests
from tests.support.alerts_runner import wait_for
from tests.support.platform_up import free_ports

pytestmark = pytest.mark.docker

PORTS = ("PG", "S3", "S3_CONSOLE", "REDIS", "AIRFLOW", "DASHBOARD", "API")


@dataclass
class Stack:
    """One compose project of the lite profile on free host ports."""

    env: dict[str, str]
    project: str
    ports: dict[str, int]
    first_alert: str = ""  # an order whose alert was delivered before a down and up

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        cmd = [*docker_images.compose("lite", self.project), *args]
        done = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert not check or done.returncode == 0, (cmd, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout + done.stderr

    def secret(self, name: str) -> str:
        return self.compose("exec", "-T", "api", "cat", f"/run/shoplake-secrets/shoplake_{name}")

    def dsn(self) -> str:
        password = self.secret("pg_password")
        return f"postgresql://shoplake:{password}@127.0.0.1:{self.ports['PG']}/shoplake"

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def docker(self, *args: str) -> str:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        return done.stdout


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    """DOCKER_HOST of an engine: one that runs, or our own dockerd (root)."""
    found = running_engine()
    if found:
        yield found
        return
    if os.geteuid() != 0:
        pytest.skip("no Docker engine answers and starting one needs root")
    own = DockerEngine(settings_for_tests())
    try:
        own.start()
    except ServiceUnavailable as exc:
        pytest.skip(f"no Docker engine could be started here: {exc}")
    try:
        yield own.url
    finally:
        own.stop()


@pytest.fixture(scope="module")
def stack(engine: str) -> Iterator[Stack]:
    env = docker_images.docker_env(engine)
    docker_images.install_plugins()
    t0 = time.monotonic()
    docker_images.ensure_base_image(env)
    base_s = time.monotonic() - t0
    print(docker_images.build_images("lite", env), f"(base image {base_s:.0f} s)")
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    env.update({f"SHOPLAKE_{name}_PORT": str(port) for name, port in ports.items()})
    env["SHOPLAKE_SIMULATE_RATE"] = "2"
    for name in ("SHOPLAKE_TELEGRAM_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "SHOPLAKE_ALERT_WEBHOOK_URL"):
        env.pop(name, None)
    s = Stack(env, f"shoplake-test-{uuid.uuid4().hex[:6]}", ports)
    try:
        t0 = time.monotonic()
        s.compose("up", "-d", "--wait", "--wait-timeout", "600", timeout=900)
        print(f"compose up --wait: {time.monotonic() - t0:.0f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", check=False)
        assert not s.docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={s.project}"
        )
        assert s.project not in s.docker("network", "ls", "--format", "{{.Name}}")
        assert s.project not in s.docker("volume", "ls", "--format", "{{.Name}}")


def dashboard_is_live(stack: Stack) -> dict[str, Any]:
    health: dict[str, Any] = httpx.get(stack.url("DASHBOARD", "/health"), timeout=10).json()
    return health if health["mode"] == "live" and health["version"] >= 1 else {}


def alert_lines(stack: Stack, order_id: str) -> list[dict[str, Any]]:
    out = stack.compose("logs", "--no-log-prefix", "alerts")
    lines = [ln for ln in out.splitlines() if ln.startswith("{") and order_id in ln]
    return [json.loads(ln) for ln in lines]


def console_states(stack: Stack, order_id: str) -> list[str]:
    """The ledger's console delivery state of each alert of the order."""
    with psycopg.connect(stack.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.state FROM shoplake_alerts.alert_deliveries d"
            " JOIN shoplake_alerts.alerts a USING (alert_id)"
            " WHERE a.record->>'order_id' = %s AND d.sink = 'console'",
            (order_id,),
        ).fetchall()
    return [r[0] for r in rows]


def insert_bad_order(stack: Stack, order_id: str) -> None:
    with psycopg.connect(stack.dsn(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO orders (order_id, customer_id, product_name, price, quantity, total,"
            " status) VALUES (%s, 'C-1', 'Lamp', 5.00, 0, 0.00, 'pending')",
            (order_id,),
        )


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
