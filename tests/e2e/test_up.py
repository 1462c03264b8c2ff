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
