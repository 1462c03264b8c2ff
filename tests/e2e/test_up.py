"""``shoplake up`` starts the platform, serves the dashboard, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from lite import supervisor
from tests.support.platform_up import (
    assert_nothing_left,
    files_holding,
    free_ports,
    installation_secrets,
    kill_platform,
    pg_dsn,
    up_env,
    wait_until_up,
)
from tests.support.telegram_standin import TelegramStandIn
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # under pytest's private tmp (0700): as root, PostgreSQL runs as its own user from a
    # folder of its own and needs nothing here
    return tmp_path / "data"


def test_up_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, data_dir: Path) -> None:
    data = data_dir
    pg, s3, console, redis_port, dash, api, airflow = free_ports(7)
    env = up_env(
        data,
        pg_port=pg,
        s3_port=s3,
        s3_console_port=console,
        redis=redis_port,
        airflow_port=airflow,
    )
    out = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lite.cli",
            "up",
            "--seed-if-empty",
            "--simulate",
            "5",
            "--catch-up-days",
            "2",
            "--dashboard-port",
            str(dash),
            "--api-port",
            str(api),
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        log = wait_until_up(up, tmp_path / "up.log", 240)
        assert f"dashboard  http://127.0.0.1:{dash}" in log and "catching the lake up" in log
        # live first: today's metrics published, the dashboard answering, then the rest
        # (Airflow, the lake's catch-up, the model, the API) in the background
        order = [
            "seeded ",
            "metrics ",
            "dashboard started",
            f"dashboard live at http://127.0.0.1:{dash}",
            "catching the lake up",
            "lake caught up: ",
            "api       started",
            "shoplake is up",
        ]
        where = [log.find(line) for line in order]
        assert -1 not in where and where == sorted(where), list(zip(order, where, strict=True))
        # the catch-up and the training wait for Airflow (started beside the dashboard)
        assert log.find("dashboard started") < log.find("airflow   running") < where[4]
        # the schedules belong to Airflow now: its UI answers and its login is printed
        assert f"UI http://127.0.0.1:{airflow}" in log
        assert httpx.get(f"http://127.0.0.1:{airflow}/api/v2/version", timeout=10).status_code in (
            200,
            401,
        )
        assert httpx.get(f"http://127.0.0.1:{dash}/", timeout=10).status_code == 200
        health = httpx.get(f"http://127.0.0.1:{dash}/health", timeout=5).json()
        assert health["status"] == "ok"

        me = psutil.Process(up.pid)
        tree = {p.pid for p in me.children(recursive=True)}
        services = {int(p.read_text()) for p in (data / "services").glob("*/*.pid")}
        assert len(services) == 4  # postgres, s3, redis, airflow
        assert {c.name for c in (data / "up" / "run").glob("*.pid")} >= {
            "dashboard.pid",
            "simulator.pid",
        }
        doomed = tree | services
        up.send_signal(signal.SIGTERM)
        assert up.wait(120) == 0, (tmp_path / "up.log").read_text()
    finally:
        if up.poll() is None:
            kill_platform(up, data)
        out.close()
    assert_nothing_left(doomed, data)
    assert "postgres  stopped" in (tmp_path / "up.log").read_text()


def _start_up(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    out = log_path.open("w+")
    try:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        out.close()  # the child holds its own descriptor


def _stop_up(up: subprocess.Popen, data: Path, log_path: Path) -> set[int]:
    """SIGTERM ``up``; the PIDs it and its services had, for assert_nothing_left."""
    me = psutil.Process(up.pid)
    doomed = {p.pid for p in me.children(recursive=True)}
    doomed |= {int(p.read_text()) for p in (data / "services").glob("*/*.pid")}
    up.send_signal(signal.SIGTERM)
    assert up.wait(180) == 0, log_path.read_text()
    return doomed


def _alert_counts(dsn: str, order_ids: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """order id -> (alerts in the ledger, deliveries marked delivered)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.record->>'order_id', count(DISTINCT a.alert_id),"
            " count(*) FILTER (WHERE d.state = 'delivered')"
            " FROM shoplake_alerts.alerts a JOIN shoplake_alerts.alert_deliveries d"
            " USING (alert_id) WHERE a.record->>'order_id' = ANY(%s) GROUP BY 1",
            (list(order_ids),),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def test_up_full_streams_alerts_through_flink_and_stops_cleanly(
    tmp_path: Path, data_dir: Path, stack: ExitStack
) -> None:
    """``up --full``: an order breaking a rule goes PostgreSQL -> Debezium -> Kafka -> Flink
    -> delivery; SIGTERM cancels the job and stops everything, keeping the connector's slot,
    so an order written while the platform is stopped alerts (once) at the next start."""
    import psycopg

    data = data_dir
    ports = free_ports(13)
    pg, s3, console, redis_port, dash, api, airflow = ports[:7]
    trino, kafka, kafka_ctl, connect, flink, flink_rpc = ports[7:]
    env = up_env(
        data,
        pg_port=pg,
        s3_port=s3,
        s3_console_port=console,
        redis=redis_port,
        airflow_port=airflow,
        trino_port=trino,
        kafka_port=kafka,
        kafka_controller_port=kafka_ctl,
        connect_port=connect,
        flink_port=flink,
        flink_rpc_port=flink_rpc,
    )
    env["SHOPLAKE_TRINO_HEAP"] = "1G"
    # secrets given to it, used for real by the sinks (wire-protocol stand-ins on loopback)
    given = {
        "api token": secrets.token_urlsafe(18),
        "telegram token": f"12345:{secrets.token_urlsafe(18)}",
        "webhook path": secrets.token_urlsafe(18),
    }
    telegram = stack.enter_context(TelegramStandIn(given["telegram token"]))
    webhook = stack.enter_context(WebhookReceiver())
    env |= {
        "SHOPLAKE_API_TOKEN": given["api token"],
        "SHOPLAKE_TELEGRAM_BOT_TOKEN": given["telegram token"],
        "SHOPLAKE_TELEGRAM_CHAT_ID": "42",
        "SHOPLAKE_TELEGRAM_API_URL": telegram.url,
        "SHOPLAKE_ALERT_WEBHOOK_URL": f"{webhook.url}/{given['webhook path']}",
    }
    cmd = [
        *(sys.executable, "-m", "lite.cli", "up", "--full", "--seed-if-empty"),
        *("--catch-up-days", "1", "--dashboard-port", str(dash), "--api-port", str(api)),
    ]
    alerts_log = data / "up" / "logs" / "alerts.log"
    insert = (
        "INSERT INTO orders (order_id, customer_id, product_name, price, quantity, total,"
        " status) VALUES (%s, 'C-1', 'Lamp', 5.00, 0, 0.00, 'pending')"
    )

    def wait_delivered(order_id: str) -> None:
        deadline = time.monotonic() + 180
        while _alert_counts(dsn, (order_id,)).get(order_id, (0, 0))[1] < 1:
            assert time.monotonic() < deadline, alerts_log.read_text()
            time.sleep(0.5)

    doomed: set[int] = set()
    up_log = tmp_path / "up.log"
    up = _start_up(cmd, env, up_log)
    try:
        log = wait_until_up(up, up_log, 480)
        dsn = pg_dsn(data, pg)
        assert "debezium  streaming orders to cdc.public.orders" in log
        assert "alert job" in log and f"Flink UI   http://127.0.0.1:{flink}" in log
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(insert, ("E2E-FULL-1",))
        wait_delivered("E2E-FULL-1")
        doomed |= _stop_up(up, data, up_log)
    finally:
        if up.poll() is None:
            kill_platform(up, data)
    log = up_log.read_text()
    assert "alert job" in log and "cancelled" in log
    assert "debezium  connector kept" in log and "slot shoplake_dbz_cdc" in log
    assert_nothing_left(doomed, data)

    # an order written while the platform is down ...
    services = [sys.executable, "-m", "lite.cli", "services"]
    subprocess.run([*services, "start", "postgres"], cwd=ROOT, env=env, check=True)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(insert, ("E2E-FULL-2",))
    finally:
        subprocess.run([*services, "stop", "postgres"], cwd=ROOT, env=env, check=True)
    # ... alerts once at the next start, and nothing alerts twice
    up_log2 = tmp_path / "up2.log"
    up = _start_up(cmd, env, up_log2)
    try:
        wait_until_up(up, up_log2, 480)
        wait_delivered("E2E-FULL-2")
        time.sleep(3)  # a duplicate would need a moment to arrive
        # a JobManager killed -9 loses the job: the supervisor restarts it and submits again
        state_file = data / "up" / "supervisor.json"
        old = supervisor.unit_pid(supervisor.read_state(state_file), "flink-jobmanager")
        assert old is not None
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 300
        while True:
            unit = next(
                u
                for u in (supervisor.read_state(state_file) or {"units": []})["units"]
                if u["name"] == "flink-jobmanager"
            )
            if unit["state"] == "running" and unit["pid"] != old and unit["restarts"] >= 1:
                break
            assert unit["state"] != "failed" and time.monotonic() < deadline, unit
            time.sleep(1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(insert, ("E2E-FULL-3",))
        wait_delivered("E2E-FULL-3")
        assert "alert job" in up_log2.read_text() and "submitted again" in up_log2.read_text()
        time.sleep(3)  # a duplicate would need a moment to arrive
        counts = _alert_counts(dsn, ("E2E-FULL-1", "E2E-FULL-2", "E2E-FULL-3"))
        # one alert each, delivered to the lake, Telegram and the webhook
        assert counts == {"E2E-FULL-1": (1, 3), "E2E-FULL-2": (1, 3), "E2E-FULL-3": (1, 3)}
        ours = [h.body["order_id"] for h in webhook.hooks() if h.body["order_id"] in counts]
        assert sorted(ours) == ["E2E-FULL-1", "E2E-FULL-2", "E2E-FULL-3"]
        assert sum("E2E-FULL-2" in m.text for m in telegram.sent) == 1
        status = subprocess.run(
            [sys.executable, "-m", "lite.cli", "status"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "cdc slot shoplake_dbz_cdc" in status and "of WAL" in status
        doomed = _stop_up(up, data, up_log2)
    finally:
        if up.poll() is None:
            kill_platform(up, data)
    assert_nothing_left(doomed, data)
    # no secret it was given or made is in any log, output or file outside its stores
    every = given | installation_secrets(data)
    assert {"shoplake_pg_password", "shoplake_redis_password"} <= set(every)
    outputs = [up_log.read_text(), up_log2.read_text(), status]
    assert files_holding(data, outputs, every) == []
