"""The lake used from several threads at once (a backfill runs days side by side)."""

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


def test_listing_a_folder_while_another_step_prunes_its_staging(tmp_path: Path):
    """A step publishing its staged files removes their folders while another step lists
    the bucket (the stale-staging sweep): the listing must not fail on a vanished folder."""
    lake = FolderLake(tmp_path)
    lake.check()
    stop = threading.Event()
    published: list[int] = []

    def stage_and_publish() -> None:
        while not stop.is_set():
            n = len(published) + 1
            day = f"date=2024-01-0{n % 9 + 1}/data.parquet"
            staged = f"_staging/run-{n}/category_performance/{day}"
            lake.put_bytes("gold", staged, b"x")
            lake.promote("gold", staged, f"category_performance/{day}")
            published.append(n)

    writer = threading.Thread(target=stage_and_publish)
    writer.start()
    try:
        listings = 0
        while (listings < 300 or len(published) < 50) and writer.is_alive():
            keys = lake.list_keys("gold", "_staging/")
            assert all(k.startswith("_staging/run-") for k in keys)
            listings += 1
    finally:
        stop.set()
        writer.join()
    assert len(published) >= 50  # the writer did not die meanwhile
    assert len(lake.list_keys("gold", "category_performance/")) == 9
