"""CDC alerts under sustained load: commit -> delivery latency, throughput, CPU and memory.

A throw-away database on the configured server receives orders at a fixed rate (one order
per transaction, 5 % alerting) while ``shoplake alerts run`` (a subprocess, console sink in
JSON) delivers. Latency is ``delivered_at - source_ts`` (the commit time in the WAL).

    python -m benchmarks.bench_alerts --duration 60 --rates 500 2000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.conninfo import make_conninfo

from jobs.adapters import source_db
from jobs.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ALERT_EVERY = 20  # every 20th order has a negative price: 5 % alerting


def _load(dsn: str, rate: float, duration: float, threads: int, stats: dict) -> None:
    """Insert ``rate`` orders/s for ``duration`` s, spread over a few connections."""
    t0, total = time.monotonic(), int(rate * duration)

    def worker(k: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(k, total, threads):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                price = "-1.00" if i % ALERT_EVERY == 0 else "19.99"
                conn.execute(
                    "INSERT INTO orders (order_id, customer_id, product_name, price, quantity,"
                    " total, status) VALUES (%s, 'CUST-B', 'Bench', %s, 1, %s, 'pending')",
                    (f"B{i:08d}", price, price),
                )

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats.update(inserted=total, load_seconds=time.monotonic() - t0)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_alerts(
    out: Path, settings_env: dict[str, str], engine: str = "lite"
) -> subprocess.Popen[bytes]:
    """``shoplake alerts run`` printing JSON lines into ``out`` (its log beside it).

    Only ``settings_env`` configures it: the caller's SHOPLAKE_* and TELEGRAM_* are dropped.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHOPLAKE_") and not k.startswith("TELEGRAM_")
    }
    env.update(settings_env)
    cmd = [sys.executable, "-m", "lite.cli", "alerts", "run", "--engine", engine]
    cmd += ["--console", "--format", "json", "--no-lake"]
    with out.open("w") as stdout, out.with_suffix(".log").open("w") as stderr:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)


def one_rate(dsn: str, rate: float, duration: float, threads: int = 16) -> dict[str, Any]:
    """One sustained-load run against a fresh database; returns its measurements."""
    with psycopg.connect(dsn) as conn:
        source_db.ensure_schema(conn)
    out = Path(tempfile.mkdtemp(prefix="bench-alerts-")) / "alerts.jsonl"
    proc = start_alerts(out, {"SHOPLAKE_SOURCE_DSN": dsn})
    ps = psutil.Process(proc.pid)
    try:
        _wait_active(dsn)
        cpu0, rss = ps.cpu_times(), [0]
        stats: dict[str, float] = {}
        loader = threading.Thread(target=_load, args=(dsn, rate, duration, threads, stats))
        loader.start()
        while loader.is_alive():
            rss.append(ps.memory_info().rss)
            loader.join(0.5)
        expected = -(-int(stats["inserted"]) // ALERT_EVERY)
        deadline = time.monotonic() + 60
        while _lines(out) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu1 = ps.cpu_times()
    finally:
        proc.terminate()
        proc.wait(30)
    records = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    lat = [
        (
            datetime.fromisoformat(r["delivered_at"]) - datetime.fromisoformat(r["source_ts"])
        ).total_seconds()
        * 1000
        for r in records
    ]
    busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "target_rate": rate,
        "duration_s": duration,
        "achieved_rate": round(stats["inserted"] / stats["load_seconds"], 1),
        "alerts_expected": expected,
        "alerts_delivered": len(records),
        "duplicates": len(records) - len({r["alert_id"] for r in records}),
        "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
        "latency_ms_p99": round(_percentile(lat, 0.99), 1) if lat else None,
        "latency_ms_max": round(max(lat), 1) if lat else None,
        "alerts_cpu_cores": round(busy / stats["load_seconds"], 3),
        "alerts_rss_mb_max": round(max(rss) / 2**20, 1),
    }


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _wait_active(dsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            # not just "active": a slot still being created is active too
            row = conn.execute(
                "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_activity a"
                " ON a.pid = s.active_pid WHERE s.database = current_database()"
                " AND a.backend_type = 'walsender'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)
    raise RuntimeError("the alerts process did not start reading its slot")


def _bench_database(settings: Settings) -> tuple[str, str]:
    """A fresh database beside the source one, so the shop's data stays untouched."""
    name = f"shoplake_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return name, make_conninfo(settings.dsn, dbname=name)


def _drop_database(settings: Settings, name: str) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for (slot,) in conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(
    settings: Settings,
    duration: float = 60,
    rates: tuple[float, ...] = (500, 2000),
    probe_rates: tuple[float, ...] = (4000, 6000),
    threads: int = 16,
) -> dict[str, Any]:
    """The benchmark: each rate on a fresh database; the probes find the highest rate with
    p99 < 1 s (they stop at the first miss or when the load generator cannot keep up)."""
    runs: list[dict[str, Any]] = []
    for rate in (*rates, *probe_rates):
        if rate in probe_rates and runs and not _sustained(runs[-1]):
            break
        name, dsn = _bench_database(settings)
        try:
            runs.append(one_rate(dsn, rate, duration, threads))
        finally:
            _drop_database(settings, name)
    ok = [r["achieved_rate"] for r in runs if _sustained(r)]
    return {
        "benchmark": "alerts",
        "engine": "lite (pgoutput, in-process)",
        "sink": "console json",
        "cpus": os.cpu_count(),
        "orders_per_transaction": 1,
        "alerting_share": 1 / ALERT_EVERY,
        "runs": runs,
        "highest_sustained_rate_p99_under_1s": max(ok) if ok else None,
        "target_met_p99_le_500ms_at_2000": any(
            r["target_rate"] == 2000 and _sustained(r) and r["latency_ms_p99"] <= 500 for r in runs
        ),
    }


def _sustained(r: dict[str, Any]) -> bool:
    return (
        r["latency_ms_p99"] is not None
        and r["latency_ms_p99"] < 1000
        and r["alerts_delivered"] >= r["alerts_expected"]
        and r["achieved_rate"] >= 0.95 * r["target_rate"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 2000])
    parser.add_argument("--probe-rates", type=float, nargs="*", default=[4000, 6000])
    parser.add_argument("--threads", type=int, default=16, help="load-generator connections")
    args = parser.parse_args()
    result = run(
        Settings(), args.duration, tuple(args.rates), tuple(args.probe_rates), args.threads
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
