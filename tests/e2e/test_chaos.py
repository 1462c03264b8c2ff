"""Chaos: kill -9 every service and child of ``shoplake up`` in turn while orders flow.

Each one must come back (the supervisor restarts it and ``shoplake status`` says so), and
afterwards nothing is lost: every order written is in the lake after a medallion run, the
dashboard serves fresh metrics, and every order breaking a rule has exactly one alert in
the ledger, delivered to the webhook.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.support.alerts_runner import wait_for
from tests.support.platform_up import (
    assert_nothing_left,
    free_ports,
    kill_platform,
    pg_dsn,
    up_env,
    wait_until_up,
)
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# children first (quick), then the services; Airflow last: its restart is the slowest
VICTIMS = ["dashboard", "alerts", "api", "simulator", "redis", "s3", "postgres", "airflow"]
RESTART_BUDGET = {"airflow": 420.0, "postgres": 120.0}


class OrderWriter(threading.Thread):
    """Inserts an order breaking INVALID_QUANTITY every 0.3 s, reconnecting across outages."""

    def __init__(self, dsn: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.prefix = prefix
        self.stop = threading.Event()
        self.committed: list[tuple[str, float]] = []  # (order_id, monotonic time)
        self.failed = 0

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        n = 0
        while not self.stop.wait(0.3):
            n += 1
            order_id = f"{self.prefix}{n:05d}"
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=3)
                conn.execute(
                    "INSERT INTO orders (order_id, order_date, customer_id, product_name, price,"
                    " quantity, total, status)"
                    " VALUES (%s, now(), 'C-1', 'Lamp', 5.00, 0, 0.00, 'pending')",
                    (order_id,),
                )
                self.committed.append((order_id, time.monotonic()))
            except psycopg.Error:
                # an outage; whether a commit in flight landed is read back from the table
                self.failed += 1
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
        if conn is not None:
            conn.close()


def supervisor_state(data: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data / "up" / "supervisor.json").read_text())
    except (OSError, ValueError):
        return None


def unit(data: Path, name: str) -> dict[str, Any]:
    state = supervisor_state(data)
    assert state is not None, "no supervisor state: `up` does not supervise"
    found = [u for u in state["units"] if u["name"] == name]
    assert found, f"{name} is not supervised: {state}"
    return found[0]


def wait_restarted(data: Path, name: str, old: int, timeout: float, up: subprocess.Popen) -> int:
    deadline = time.monotonic() + timeout
    while True:
        assert up.poll() is None, "up exited"
        u = unit(data, name)
        if u["state"] == "running" and u["pid"] not in (None, old) and u["restarts"] >= 1:
            return int(u["pid"])
        assert u["state"] != "failed", u
        assert time.monotonic() < deadline, f"{name} not back after {timeout:.0f} s: {u}"
        time.sleep(0.5)


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "lite.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_every_service_and_child_killed_in_turn_comes_back_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    pg, s3, console, redis_port, dash, api, airflow = free_ports(7)
    with WebhookReceiver() as hook:
        env = up_env(
            data,
            pg_port=pg,
            s3_port=s3,
            s3_console_port=console,
            redis=redis_port,
            airflow_port=airflow,
        )
        env["SHOPLAKE_ALERT_WEBHOOK_URL"] = hook.url
        up_log = tmp_path / "up.log"
        out = up_log.open("w+")
        up = subprocess.Popen(
            [
                *(sys.executable, "-m", "lite.cli", "up", "--seed-if-empty", "--simulate", "2"),
                *("--catch-up-days", "1", "--dashboard-port", str(dash), "--api-port", str(api)),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # unique per run: as root PostgreSQL keeps its data in its own user's home
        prefix = f"CHAOS-{uuid.uuid4().hex[:8]}-"
        like = prefix + "%"
        seen: set[int] = set()
        writer: OrderWriter | None = None
        try:
            wait_until_up(up, up_log, 420)
            dsn = pg_dsn(data, pg)  # the password its first start generated
            writer = OrderWriter(dsn, prefix)
            writer.start()
            back_at: dict[str, float] = {}
            killed: dict[str, int] = {}
            for name in VICTIMS:
                old = unit(data, name)["pid"]
                assert old and psutil.pid_exists(old), unit(data, name)
                seen.add(old)
                os.kill(old, signal.SIGKILL)
                killed[name] = old
                new = wait_restarted(data, name, old, RESTART_BUDGET.get(name, 90.0), up)
                seen.add(new)
                back_at[name] = time.monotonic()
            time.sleep(3)  # a few orders after the last restart too
            writer.stop.set()
            writer.join(30)

            # status (another process) shows every restart
            status = cli(env, "status", timeout=120)
            assert "supervised by shoplake up" in status, status
            for name in VICTIMS:
                line = next(x for x in status.splitlines() if re.match(rf"\s+{name}\s", x))
                assert "running" in line and re.search(r"restarts [1-9]", line), line
                # the last exit may be a later one: a child losing PostgreSQL may exit too
                assert "last exit: " in line, line
            log = up_log.read_text()
            for name, old in killed.items():
                assert f"supervisor: {name} (pid {old}) killed by SIGKILL; restarting" in log

            # orders were written before, during and after the PostgreSQL restart
            times = [t for _, t in writer.committed]
            assert any(t > back_at["postgres"] for t in times), (writer.failed, len(times))
            with psycopg.connect(dsn) as conn:
                written = {
                    r[0]
                    for r in conn.execute(
                        "SELECT order_id FROM orders WHERE order_id LIKE %s", (like,)
                    ).fetchall()
                }
                days = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT (order_date AT TIME ZONE 'UTC')::date FROM orders"
                        " WHERE order_id LIKE %s",
                        (like,),
                    ).fetchall()
                ]
            assert {o for o, _ in writer.committed} <= written and len(written) >= 50

            # exactly one alert per triggering order in the ledger, none lost, none doubled
            def ledger() -> dict[str, list[str]]:
                with psycopg.connect(dsn) as conn:
                    rows = conn.execute(
                        "SELECT record->>'order_id', alert_id FROM shoplake_alerts.alerts"
                        " WHERE record->>'alert_type' = 'INVALID_QUANTITY'"
                        " AND record->>'order_id' LIKE %s",
                        (like,),
                    ).fetchall()
                by_order: dict[str, list[str]] = {}
                for order_id, alert_id in rows:
                    by_order.setdefault(order_id, []).append(alert_id)
                return by_order

            wait_for(lambda: set(ledger()) == written or None, 240, "alerts for every order", 1.0)
            alerts = ledger()
            assert all(len(ids) == 1 for ids in alerts.values()), alerts
            alert_ids = {ids[0] for ids in alerts.values()}

            def undelivered() -> int:
                with psycopg.connect(dsn) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM shoplake_alerts.alert_deliveries"
                        " WHERE alert_id = ANY(%s) AND state <> 'delivered'",
                        (list(alert_ids),),
                    ).fetchone()
                return int(row[0]) if row else -1

            wait_for(lambda: undelivered() == 0, 180, "every delivery done", 1.0)
            received = {k for k in hook.keys() if k in alert_ids}  # noqa: SIM118 (a method)
            assert received == alert_ids, len(alert_ids - received)

            # every order written is in the lake after the day's medallion run
            for day in days:
                cli(env, "medallion", "run", "--date", day.isoformat())
            rows = json.loads(
                cli(
                    env,
                    *("sql", "--format", "json"),
                    f"SELECT order_id FROM bronze_orders WHERE order_id LIKE '{like}'",
                )
            )
            in_lake = [r["order_id"] for r in rows]
            assert sorted(in_lake) == sorted(written)

            # the dashboard answers and takes fresh metrics (Airflow -> Redis) after it all
            assert httpx.get(f"http://127.0.0.1:{dash}/", timeout=10).status_code == 200
            first = httpx.get(f"http://127.0.0.1:{dash}/health", timeout=10).json()

            def fresh() -> dict[str, Any] | None:
                h = httpx.get(f"http://127.0.0.1:{dash}/health", timeout=10).json()
                return h if h["mode"] == "live" and h["version"] > first["version"] else None

            wait_for(fresh, 180, "fresh metrics on the dashboard", 1.0)

            me = psutil.Process(up.pid)
            seen |= {p.pid for p in me.children(recursive=True)}
            seen |= {int(p.read_text()) for p in (data / "services").glob("*/*.pid")}
            up.send_signal(signal.SIGTERM)
            assert up.wait(180) == 0, up_log.read_text()
        finally:
            if writer is not None:
                writer.stop.set()
            if up.poll() is None:
                kill_platform(up, data)
            out.close()
    assert_nothing_left(seen, data)
    assert not (data / "up" / "supervisor.json").exists()
