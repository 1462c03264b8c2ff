"""Docker fixtures: an engine (one that runs, or our own dockerd as root) and compose projects.

A Docker engine that answers is used as it is; as root, the harness starts a dockerd of its
own (data root in the engine cache, stopped by PID at the end of the session). The Debian base
image is made with debootstrap where no registry answers. Where no engine can be had, the
tests skip, saying why. Each project runs on free host ports under a unique name, and its
teardown (``down -v``) is checked to leave no container, network or volume.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
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
from lite.services.docker_engine import engine_for
from tests.conftest import settings_for_tests
from tests.support.alerts_runner import wait_for
from tests.support.platform_up import free_ports

LITE_PORTS = ("PG", "S3", "S3_CONSOLE", "REDIS", "AIRFLOW", "DASHBOARD", "API")
PORTS = {"lite": LITE_PORTS, "full": (*LITE_PORTS, "CONNECT", "FLINK", "TRINO")}


@dataclass
class Stack:
    """One compose project of the lite profile on free host ports."""

    env: dict[str, str]
    project: str
    ports: dict[str, int]
    profile: str = "lite"
    first_alert: str = ""  # an order whose alert was delivered before a down and up

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        cmd = [*docker_images.compose(self.profile, self.project), *args]
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


@pytest.fixture(scope="session")
def engine() -> Iterator[str]:
    """DOCKER_HOST of an engine: one that runs, or our own dockerd (root)."""
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(engine_for(settings_for_tests()))
        except ServiceUnavailable as exc:
            pytest.skip(f"no Docker engine answers and none could be started here: {exc}")
        yield host


@contextlib.contextmanager
def running_stack(engine: str, profile: str) -> Iterator[Stack]:
    """Build a profile's images, bring the project up on free ports; ``down -v`` at the end."""
    env = docker_images.docker_env(engine)
    docker_images.install_plugins()
    t0 = time.monotonic()
    docker_images.ensure_base_image(env)
    base_s = time.monotonic() - t0
    print(docker_images.build_images(profile, env), f"(base image {base_s:.0f} s)")
    names = PORTS[profile]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env.update({f"SHOPLAKE_{name}_PORT": str(port) for name, port in ports.items()})
    for name in ("SHOPLAKE_TELEGRAM_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "SHOPLAKE_ALERT_WEBHOOK_URL"):
        env.pop(name, None)
    s = Stack(env, f"shoplake-test-{uuid.uuid4().hex[:6]}", ports, profile)
    try:
        t0 = time.monotonic()
        s.compose("up", "-d", "--wait", "--wait-timeout", "900", timeout=1200)
        print(f"compose up --wait ({profile}): {time.monotonic() - t0:.0f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", check=False)
        label = f"label=com.docker.compose.project={s.project}"
        assert not s.docker("ps", "-aq", "--filter", label)
        assert s.project not in s.docker("network", "ls", "--format", "{{.Name}}")
        assert s.project not in s.docker("volume", "ls", "--format", "{{.Name}}")


def dashboard_is_live(stack: Stack) -> dict[str, Any]:
    health: dict[str, Any] = httpx.get(stack.url("DASHBOARD", "/health"), timeout=10).json()
    return health if health["mode"] == "live" and health["version"] >= 1 else {}


def api_health(stack: Stack) -> dict[str, Any]:
    """The API's /health, or {} while nothing answers on its port yet."""
    try:
        return dict(httpx.get(stack.url("API", "/health"), timeout=10).json())
    except httpx.HTTPError:
        return {}


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


def check_platform_from_host(stack: Stack) -> None:
    """From the host's loopback: a live dashboard, personal recommendations, Airflow's UI."""
    # the dashboard shows today's KPIs, pushed through Redis by Airflow's micro-batch DAG
    live = wait_for(lambda: dashboard_is_live(stack), 240, "a live dashboard", interval=2)
    assert live["status"] == "ok"
    # the API serves the first model; it has no healthcheck, so `up --wait` may return while
    # it still loads the model (once in a CI run the dashboard was live first)
    health = wait_for(lambda: api_health(stack), 120, "the API's health", interval=2)
    assert health["status"] == "ok" and health["model_version"], health
    with psycopg.connect(stack.dsn()) as conn:
        row = conn.execute(
            # the most active real customer (the generator's defects include orders without one)
            "SELECT customer_id FROM orders WHERE trim(customer_id) <> ''"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    rec = httpx.get(stack.url("API", f"/recommend/{row[0]}?top_n=5"), timeout=10).json()
    assert rec["strategy"] == "personal" and len(rec["recommendations"]) == 5, rec
    # the Airflow UI answers on the host's loopback
    assert httpx.get(stack.url("AIRFLOW", "/api/v2/version"), timeout=10).status_code in (200, 401)


def check_dag_run_writes_the_lake(stack: Stack) -> None:
    """A medallion run triggered through Airflow's REST API succeeds and writes its day."""
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
