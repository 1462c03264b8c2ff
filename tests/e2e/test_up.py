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


def up_env(data: Path, **ports: int) -> dict[str, str]:
    """The environment of an ``up`` under test: its data dir and free ports, nothing inherited.

    ``ports`` are Settings fields ending in ``_port`` (``pg_port=...``); ``redis`` is a URL.
    """
    # PYTEST_* would switch NiceGUI into its own screen-test mode; TELEGRAM_* would send alerts
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOPLAKE_", "PYTEST_", "TELEGRAM_"))
    }
    env["SHOPLAKE_DATA_DIR"] = str(data)
    redis = ports.pop("redis", None)
    if redis is not None:
        env["SHOPLAKE_REDIS_URL"] = f"redis://127.0.0.1:{redis}/0"
    env.update({f"SHOPLAKE_{name.upper()}": str(port) for name, port in ports.items()})
    return env


def wait_until_up(up: subprocess.Popen, log: Path, timeout: float) -> str:
    """Wait for ``up``'s "shoplake is up" line; its log so far."""
    deadline = time.monotonic() + timeout
    while "shoplake is up" not in log.read_text():
        assert up.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return log.read_text()


def assert_nothing_left(doomed: set[int], data: Path) -> None:
    """No process of the platform runs on, and no pid file stays in its data dir."""
    time.sleep(0.5)
    left = [
        p
        for p in doomed
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert not list(data.rglob("*.pid")), list(data.rglob("*.pid"))


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
            os.killpg(up.pid, signal.SIGKILL)
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
            os.killpg(up.pid, signal.SIGKILL)
        out.close()
    log = up_log.read_text()
    assert "alert job" in log and "cancelled" in log
    assert "debezium  removed connector shoplake-orders-cdc, slot shoplake_dbz_cdc" in log
    assert_nothing_left(doomed, data)
