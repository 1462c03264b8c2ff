"""Parquet written from Arrow (the extract's bronze) can be read by every core."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.adapters.lake.base import ROW_GROUP_ROWS, parquet_bytes


def test_a_days_rows_are_split_into_row_groups():
    rows = 2 * ROW_GROUP_ROWS + 1000  # a 250k-order day
    table = pa.table({"order_id": [f"ORD-{i}" for i in range(rows)], "n": range(rows)})
    meta = pq.ParquetFile(io.BytesIO(parquet_bytes(table))).metadata
    assert meta.num_row_groups == 3  # one thread each in DuckDB and Trino, not one for all
    assert meta.row_group(0).num_rows == ROW_GROUP_ROWS
    assert meta.row_group(0).column(0).compression == "ZSTD"
