"""Appends alerts to the lake: ``gold/alerts/date=YYYY-MM-DD/part-<batch>.parquet``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa

from jobs.adapters.lake import Lake, parquet_bytes
from jobs.adapters.lake.layout import ALERTS
from jobs.alerts.sinks.base import Alert, Sink
from jobs.domain.rules import ALERT_FIELDS


def _day(alert: Alert) -> dt.date:
    stamp = alert.source_ts or alert.detected_at
    return dt.datetime.fromisoformat(stamp).astimezone(dt.UTC).date()


def alerts_table(alerts: Sequence[Alert]) -> pa.Table:
    """Every field as text except the position, so mixed or odd values never break a file."""
    columns = {
        f: [None if a[f] is None else str(a[f]) for a in alerts]
        for f in ALERT_FIELDS
        if f != "source_lsn"
    }
    table = pa.table({f: pa.array(v, pa.string()) for f, v in columns.items()})
    lsns = pa.array([a.source_lsn for a in alerts], pa.int64())
    return table.append_column("source_lsn", lsns)


class LakeSink(Sink):
    """A resent batch keeps its key, so it rewrites the same file: appends stay exactly-once."""

    name = "lake"
    max_batch = 5000

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        by_day: dict[dt.date, list[Alert]] = {}
        for alert in alerts:
            by_day.setdefault(_day(alert), []).append(alert)
        for day, group in by_day.items():
            data = parquet_bytes(alerts_table(group))
            self.lake.put_bytes(ALERTS.bucket, ALERTS.part_key(day, batch_key), data)
