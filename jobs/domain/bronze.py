"""Bronze rows: the extracted source rows plus where and when they were taken (pure Arrow)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

SOURCE_NAME = "postgresql:public.orders"


def add_bronze_metadata(
    table: pa.Table, run_id: str, ingested_at: dt.datetime, source: str = SOURCE_NAME
) -> pa.Table:
    """The extracted rows plus ``_ingested_at`` (UTC), ``_run_id`` and ``_source``."""
    n = table.num_rows
    ts = pa.timestamp("us", tz="UTC")
    return (
        table.append_column("_ingested_at", pa.array([ingested_at] * n, ts))
        .append_column("_run_id", pa.array([run_id] * n, pa.string()))
        .append_column("_source", pa.array([source] * n, pa.string()))
    )
