"""``shoplake up`` starts the platform, serves the dashboard, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # not under pytest's private tmp (0700): PostgreSQL runs as an unprivileged user when root
    path = Path(tempfile.mkdtemp(prefix="shoplake-up-"))
    path.chmod(0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def test_up_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, data_dir: Path) -> None:
    data = data_dir
    pg, s3, console, redis_port, dash, api, airflow = free_ports(7)
    # PYTEST_* would switch NiceGUI into its own screen-test mode
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "PYTEST_"))}
    env.update(
        {
            "SHOPLAKE_DATA_DIR": str(data),
            "SHOPLAKE_PG_PORT": str(pg),
            "SHOPLAKE_S3_PORT": str(s3),
            "SHOPLAKE_S3_CONSOLE_PORT": str(console),
            "SHOPLAKE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SHOPLAKE_AIRFLOW_PORT": str(airflow),
        }
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
        deadline = time.monotonic() + 240
        while "shoplake is up" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(0.5)
        log = (tmp_path / "up.log").read_text()
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
            os.killpg(up.pid, signal.SIGKILL)
        out.close()
    time.sleep(0.5)
    left = [
        p
        for p in doomed
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert not list(data.rglob("*.pid")), list(data.rglob("*.pid"))
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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOPLAKE_", "PYTEST_", "TELEGRAM_"))
    }
    env.update(
        {
            "SHOPLAKE_DATA_DIR": str(data),
            "SHOPLAKE_PG_PORT": str(pg),
            "SHOPLAKE_S3_PORT": str(s3),
            "SHOPLAKE_S3_CONSOLE_PORT": str(console),
            "SHOPLAKE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SHOPLAKE_AIRFLOW_PORT": str(airflow),
            "SHOPLAKE_TRINO_PORT": str(trino),
            "SHOPLAKE_TRINO_HEAP": "1G",
            "SHOPLAKE_KAFKA_PORT": str(kafka),
            "SHOPLAKE_KAFKA_CONTROLLER_PORT": str(kafka_ctl),
            "SHOPLAKE_CONNECT_PORT": str(connect),
            "SHOPLAKE_FLINK_PORT": str(flink),
            "SHOPLAKE_FLINK_RPC_PORT": str(flink_rpc),
        }
    )
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
        deadline = time.monotonic() + 480
        while "shoplake is up" not in up_log.read_text():
            assert up.poll() is None, up_log.read_text()
            assert time.monotonic() < deadline, up_log.read_text()
            time.sleep(0.5)
        log = up_log.read_text()
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
            os.killpg(up.pid, signal.SIGKILL)
        out.close()
    log = up_log.read_text()
    assert "alert job" in log and "cancelled" in log
    assert "debezium  removed connector shoplake-orders-cdc, slot shoplake_dbz_cdc" in log
    time.sleep(0.5)
    left = [
        p
        for p in doomed
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert not list(data.rglob("*.pid")), list(data.rglob("*.pid"))
