"""Connections of one process share one DuckDB database, whichever thread asks first."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from jobs.adapters.lake import FolderLake
from jobs.adapters.lake import base as lake_base


def test_threads_first_connections_share_one_database(tmp_path: Path):
    lake = FolderLake(tmp_path)
    lake_base._new_database.cache_clear()  # as in a fresh process: no database yet
    start = threading.Barrier(4)
    cons: list[duckdb.DuckDBPyConnection] = []

    def first_connect() -> None:
        start.wait()
        cons.append(lake.connect())

    threads = [threading.Thread(target=first_connect) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # a table one creates is every other's (the medallion's silver step relies on it)
    cons[0].execute("CREATE TABLE shared_t AS SELECT 42 AS x")
    try:
        assert [c.execute("SELECT x FROM shared_t").fetchall() for c in cons] == [[(42,)]] * 4
    finally:
        cons[0].execute("DROP TABLE shared_t")
        for c in cons:
            c.close()
