"""The delivery ledger with more than one delivery process: one deliverer per sink and ledger."""

from __future__ import annotations

import logging
import threading

import psycopg
import pytest

from jobs.alerts import delivery
from jobs.alerts.ledger import postgres as ledger
from jobs.settings import Settings
from tests.support.alert_topic import alert_records
from tests.support.alerts_runner import MemorySink, wait_for


def record(settings: Settings, first: int, count: int) -> set[str]:
    """Store ``count`` new alerts with a pending console delivery; their ids."""
    batch = alert_records(settings, first, count)
    with psycopg.connect(settings.dsn) as conn, conn.transaction():
        ledger.record_alerts(conn, batch, ["console"])
    return {a["alert_id"] for a in batch}


def holders(settings: Settings) -> int:
    """Sessions holding a sink lock of this ledger's database."""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.granted"
            " AND d.datname = current_database()",
            (ledger.SINK_LOCK_CLASS,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_second_delivery_process_stands_by_and_takes_over(
    pg_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes on one ledger would both claim the same pending rows, and a starting one
    would resend the other's in-flight batches as "in doubt": the second must wait."""
    caplog.set_level(logging.INFO, logger="jobs.alerts")
    with psycopg.connect(pg_settings.dsn) as conn:
        ledger.ensure_schema(conn)
    first_stop, second_stop = threading.Event(), threading.Event()
    first_sink, second_sink = MemorySink(), MemorySink()
    (first,) = delivery.start_workers(ledger.PgLedger(pg_settings.dsn), [first_sink], first_stop)
    try:
        wait_for(lambda: holders(pg_settings) == 1, 30, "the first worker's sink lock")
        (second,) = delivery.start_workers(
            ledger.PgLedger(pg_settings.dsn), [second_sink], second_stop
        )
        wait_for(lambda: "standing by" in caplog.text, 30, "the second worker standing by")

        early = set()
        for start in range(0, 200, 20):  # batches while both run: both poll the ledger
            early |= record(pg_settings, start, 20)
        wait_for(lambda: len(first_sink.records()) >= len(early), 60, "the first 200 alerts")
        assert sorted(r["alert_id"] for r in first_sink.records()) == sorted(early)
        assert second_sink.records() == []

        first_stop.set()  # its connection closes: the lock goes with it
        first.join(timeout=30)
        assert not first.is_alive()
        late = record(pg_settings, 200, 30)
        wait_for(lambda: len(second_sink.records()) >= len(late), 60, "alerts after the takeover")
        assert sorted(r["alert_id"] for r in second_sink.records()) == sorted(late)
        assert len(first_sink.records()) == len(early)
        assert "console: taking over delivery" in caplog.text
        assert holders(pg_settings) == 1
    finally:
        first_stop.set()
        second_stop.set()
        first.join(timeout=30)
        if "second" in locals():
            second.join(timeout=30)
