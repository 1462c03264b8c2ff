"""Full-profile streaming alerts beside the lite engine, under the same load, in one run.

For each rate a throw-away database receives orders (one per transaction, 5 % alerting)
for ``--duration`` seconds while both engines watch it:

- full: Debezium (Kafka Connect) -> ``<prefix>.public.orders`` -> the Flink alert job ->
  ``<alerts topic>`` -> ``shoplake alerts run --engine flink`` (console sink, JSON);
- lite: ``shoplake alerts run`` reading its own pgoutput slot (console sink, JSON).

Latencies are measured from the commit time in the WAL (``source_ts``): to the alert's
arrival on the Flink alerts topic (a consumer in this process), and to delivery by each
engine's delivery process (``delivered_at``). Memory: the peak RSS of every process of each
engine, sampled every 0.5 s.

    python -m benchmarks.bench_streaming --duration 60 --rates 200 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bench_alerts import (
    ALERT_EVERY,
    _bench_database,
    _drop_database,
    _load,
    _percentile,
    start_alerts,
)
from jobs.adapters import debezium, kafka_io
from jobs.alerts import flink_job as flink_alerts
from jobs.settings import Settings
from lite.services import manager
from lite.services.flink.service import runtime

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ["kafka", "connect", "flink-jobmanager", "flink-taskmanager"]
# every test or benchmark topic is unique: a run never reads another's records
DRAIN_TIMEOUT_S = 120.0


def _ms(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(a) - dt.datetime.fromisoformat(b)).total_seconds() * 1000


def _summary(lat: list[float]) -> dict[str, float | None]:
    if not lat:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(_percentile(lat, 0.99), 1),
        "max_ms": round(max(lat), 1),
    }


class TopicWatcher(threading.Thread):
    """Notes when each alert arrives on the Flink alerts topic (first copy only)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.consumer = kafka_io.consumer(
            settings, settings.alerts_topic, None, fetch_max_wait_ms=10
        )
        self.first_seen: dict[str, tuple[str, str]] = {}
        self.copies = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for records in self.consumer.poll(timeout_ms=50).values():
                now = dt.datetime.now(dt.UTC).isoformat()
                for rec in records:
                    alert = rec.value
                    if isinstance(alert, dict) and "alert_id" in alert:
                        self.copies += 1
                        self.first_seen.setdefault(alert["alert_id"], (now, alert["source_ts"]))

    def close(self) -> None:
        self.halt.set()
        self.join(10)
        kafka_io.close_quietly(self.consumer)


def _alerts_process(
    settings: Settings, out: Path, engine: str, dsn: str
) -> subprocess.Popen[bytes]:
    return start_alerts(
        out,
        {
            "SHOPLAKE_DATA_DIR": str(settings.data_dir),
            "SHOPLAKE_SOURCE_DSN": dsn,
            "SHOPLAKE_KAFKA_PORT": str(settings.kafka_port),
            "SHOPLAKE_CDC_TOPIC_PREFIX": settings.cdc_topic_prefix,
            "SHOPLAKE_ALERTS_TOPIC": settings.alerts_topic,
        },
        engine,
    )


def _delivered(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _engine_pids(settings: Settings) -> dict[str, int]:
    pids = {}
    for svc in manager.services(settings, STREAMING):
        pid = svc.pid()
        if pid is not None:
            pids[svc.name] = pid
    return pids


def one_rate(base: Settings, rate: float, duration: float, threads: int) -> dict[str, Any]:
    """Both engines on one fresh database at ``rate`` orders/s; their measurements."""
    name, dsn = _bench_database(base)
    ledger_name, ledger_dsn = _bench_database(base)
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={"source_dsn": dsn, "cdc_topic_prefix": f"b{tag}", "alerts_topic": f"alerts-{tag}"}
    )
    work = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    watcher: TopicWatcher | None = None
    try:
        from jobs.adapters import source_db

        with source_db.session(dsn) as conn:
            source_db.ensure_schema(conn)
        debezium.register(settings)
        flink_alerts.submit(settings, runtime(settings))
        watcher = TopicWatcher(settings)
        watcher.start()
        # each engine its own delivery ledger: sharing one, the second engine to record an
        # alert would find it there already and never deliver it (the ledger de-duplicates)
        procs["full-delivery"] = _alerts_process(
            settings, work / "flink.jsonl", "flink", ledger_dsn
        )
        procs["lite-alerts"] = _alerts_process(settings, work / "lite.jsonl", "lite", dsn)
        time.sleep(5)  # both readers attach (the lite slot, the delivery consumer group)
        watched = {**{k: p.pid for k, p in procs.items()}, **_engine_pids(settings)}
        handles = {k: psutil.Process(pid) for k, pid in watched.items()}
        peak = dict.fromkeys(handles, 0)
        stats: dict[str, float] = {}
        loader = threading.Thread(target=_load, args=(dsn, rate, duration, threads, stats))
        loader.start()
        while loader.is_alive():
            for key, handle in handles.items():
                try:
                    rss = handle.memory_info().rss
                    rss += sum(c.memory_info().rss for c in handle.children(recursive=True))
                except psutil.Error:
                    continue
                peak[key] = max(peak[key], rss)
            loader.join(0.5)
        expected = -(-int(stats["inserted"]) // ALERT_EVERY)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            done = [len(_delivered(work / f"{e}.jsonl")) >= expected for e in ("flink", "lite")]
            if all(done) and len(watcher.first_seen) >= expected:
                break
            time.sleep(0.5)
        lite, full = _delivered(work / "lite.jsonl"), _delivered(work / "flink.jsonl")
        topic = [_ms(seen, src) for seen, src in watcher.first_seen.values()]
        result = {
            "target_rate": rate,
            "duration_s": duration,
            "achieved_rate": round(stats["inserted"] / stats["load_seconds"], 1),
            "alerts_expected": expected,
            "lite": {
                "delivered": len(lite),
                "duplicates": len(lite) - len({r["alert_id"] for r in lite}),
                "commit_to_delivered": _summary(
                    [_ms(r["delivered_at"], r["source_ts"]) for r in lite]
                ),
            },
            "full": {
                "on_topic": len(watcher.first_seen),
                "topic_copies": watcher.copies,
                "delivered": len(full),
                "duplicates": len(full) - len({r["alert_id"] for r in full}),
                "commit_to_topic": _summary(topic),
                "commit_to_delivered": _summary(
                    [_ms(r["delivered_at"], r["source_ts"]) for r in full]
                ),
            },
            "same_alert_ids": {r["alert_id"] for r in lite} == {r["alert_id"] for r in full},
            "peak_rss_mb": {k: round(v / 2**20) for k, v in peak.items()},
        }
        lite_p50 = result["lite"]["commit_to_delivered"]["p50_ms"]
        full_p50 = result["full"]["commit_to_delivered"]["p50_ms"]
        if lite_p50 and full_p50:
            result["full_over_lite_p50"] = round(full_p50 / lite_p50, 2)
        return result
    finally:
        for proc in procs.values():
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if watcher is not None:
            watcher.close()
        flink_alerts.cancel(settings, runtime(settings))
        debezium.unregister(settings)
        kafka_io.delete_topics(settings, [settings.cdc_topic, settings.alerts_topic])
        shutil.rmtree(work, ignore_errors=True)
        _drop_database(base, name)
        _drop_database(base, ledger_name)


def run(
    settings: Settings, duration: float, rates: tuple[float, ...], threads: int
) -> dict[str, Any]:
    manager.start(settings, STREAMING, full=True)
    runs = [one_rate(settings, rate, duration, threads) for rate in rates]
    return {
        "benchmark": "streaming",
        "engines": {
            "full": "Debezium 3.6.1 (Connect 4.3.1) -> Kafka 4.3.1 -> Flink 2.2.1 SQL job"
            " -> kafka-python delivery",
            "lite": "pgoutput read in-process",
        },
        "sink": "console json (both)",
        "cpus": os.cpu_count(),
        "orders_per_transaction": 1,
        "alerting_share": 1 / ALERT_EVERY,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--rates", type=float, nargs="+", default=[200, 1000])
    parser.add_argument("--threads", type=int, default=8, help="load-generator connections")
    args = parser.parse_args()
    result = run(Settings(), args.duration, tuple(args.rates), args.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
