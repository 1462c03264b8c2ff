"""``shoplake up`` starts the platform, serves the dashboard, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.platform_up import (
    assert_nothing_left,
    free_ports,
    kill_platform,
    up_env,
    wait_until_up,
)

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


def test_up_full_streams_alerts_through_flink_and_stops_cleanly(
    tmp_path: Path, data_dir: Path
) -> None:
    """``up --full``: an order breaking a rule goes PostgreSQL -> Debezium -> Kafka -> Flink
    -> delivery; SIGTERM cancels the job, drops the connector's slot and stops everything."""
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
    up_log = tmp_path / "up.log"
    out = up_log.open("w+")
    up = subprocess.Popen(
        [
            *(sys.executable, "-m", "lite.cli", "up", "--full", "--seed-if-empty"),
            *("--catch-up-days", "1", "--dashboard-port", str(dash), "--api-port", str(api)),
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    alerts_log = data / "up" / "logs" / "alerts.log"
    try:
        log = wait_until_up(up, up_log, 480)
        assert "debezium  streaming orders to cdc.public.orders" in log
        assert "alert job" in log and f"Flink UI   http://127.0.0.1:{flink}" in log
        dsn = f"postgresql://shoplake@127.0.0.1:{pg}/shoplake"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO orders (order_id, customer_id, product_name, price, quantity, total,"
                " status) VALUES ('E2E-FULL-1', 'C-1', 'Lamp', 5.00, 0, 0.00, 'pending')"
            )
        deadline = time.monotonic() + 120
        while "E2E-FULL-1" not in (alerts_log.read_text() if alerts_log.exists() else ""):
            assert time.monotonic() < deadline, alerts_log.read_text()
            time.sleep(0.5)
        assert "INVALID_QUANTITY" in alerts_log.read_text()

        me = psutil.Process(up.pid)
        doomed = {p.pid for p in me.children(recursive=True)}
        doomed |= {int(p.read_text()) for p in (data / "services").glob("*/*.pid")}
        up.send_signal(signal.SIGTERM)
        assert up.wait(180) == 0, up_log.read_text()
    finally:
        if up.poll() is None:
            kill_platform(up, data)
        out.close()
    log = up_log.read_text()
    assert "alert job" in log and "cancelled" in log
    assert "debezium  removed connector shoplake-orders-cdc, slot shoplake_dbz_cdc" in log
    assert_nothing_left(doomed, data)
