"""The daily digest end to end: the medallion's run of yesterday records it once in the real
ledger, however often the day is re-run, and a delivery worker posts it to a webhook once."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pytest

from jobs import medallion
from jobs.adapters import source_db
from jobs.adapters.lake.layout import DAILY_SUMMARY
from jobs.alerts import delivery
from jobs.alerts.ledger.postgres import PgLedger
from jobs.alerts.sinks.webhook import WebhookSink
from jobs.bootstrap import lake_for
from jobs.domain import digest, generator
from jobs.settings import Settings
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration


def load(settings: Settings, days: list[dt.date]) -> None:
    model = generator.build_model(5, 200, 60)
    now = dt.datetime.now(dt.UTC)
    with source_db.session(settings.dsn) as conn:
        for i, day in enumerate(days):
            rows = generator.orders_for_day(model, 5 + i, day, 300, now=now)
            source_db.copy_in(conn, "orders", rows, skip_existing=False)
        conn.commit()


def digests(settings: Settings) -> list[tuple[str, str, list[str]]]:
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT a.alert_id, a.record->>'message', array_agg(d.sink ORDER BY d.sink)"
            " FROM shoplake_alerts.alerts a JOIN shoplake_alerts.alert_deliveries d"
            " USING (alert_id) WHERE a.record->>'alert_type' = %s GROUP BY 1, 2",
            (digest.DIGEST_TYPE,),
        ).fetchall()
    return [(r[0], r[1], list(r[2])) for r in rows]


def test_yesterdays_run_records_one_digest_and_a_worker_delivers_it(
    pg_settings: Settings, s3_settings: Settings
) -> None:
    with source_db.session(pg_settings.dsn) as conn:
        source_db.ensure_schema(conn)
    with WebhookReceiver() as hook:
        settings = pg_settings.model_copy(update={"alert_webhook_url": hook.url})
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        older = yesterday - dt.timedelta(days=1)
        load(settings, [older, yesterday])
        PgLedger(settings.dsn).prepare()
        medallion.run_date(settings, older)  # two days ago: no digest
        assert digests(settings) == []
        report = medallion.run_date(settings, yesterday)
        medallion.run_date(settings, yesterday)  # a re-run records nothing new
        ((alert_id, text, sinks),) = digests(settings)
        assert alert_id == digest.digest_id(yesterday) and sinks == ["console", "webhook"]
        gold = lake_for(settings).read_table(DAILY_SUMMARY, yesterday).to_pylist()[0]
        before = lake_for(settings).read_table(DAILY_SUMMARY, older).to_pylist()[0]
        assert f"Orders: {gold['total_orders']:,} (" in text
        change = (gold["total_orders"] - before["total_orders"]) / before["total_orders"] * 100
        assert f"{abs(change):.1f}% vs the day before" in text
        assert "Validation: " in text and f"{report.counts.bronze:,} rows" in text

        stop = threading.Event()
        workers = delivery.start_workers(PgLedger(settings.dsn), [WebhookSink(hook.url)], stop)
        try:
            deadline = time.monotonic() + 30
            while not hook.hooks() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.5)  # a second delivery would come within the worker's poll
        finally:
            delivery.stop_workers(workers, stop)
        (posted,) = hook.hooks()
        assert posted.key == alert_id and posted.body["message"] == text
