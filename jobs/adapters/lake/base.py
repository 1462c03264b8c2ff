"""The lake interface: primitives per backend, shared work (Parquet, staging, DuckDB) here.

Atomicity and replacement, decided once for both backends:

* every single object is written atomically (an S3 PUT or multipart upload only
  becomes visible when complete; a folder write goes to a temp name in the same
  directory and is ``os.replace``-d), so no reader ever sees a partial file;
* a step with several outputs (silver: clean + rejected; gold: three tables)
  stages them all first: under ``<bucket>/_staging/<run_id>/`` on a folder, in
  the process's own local folder for an S3 lake. Only when every output is
  complete are they published to their final keys (a rename on a folder, one
  upload each on S3: cheaper than writing to S3 and copying there, which had
  MinIO read and write every output twice). A failure while computing or writing
  (the slow, failure-prone part) leaves the previous outputs untouched; the
  staged files are removed.
* the publication itself is N atomic operations, not one transaction (S3 has
  none): a crash between two of them could pair a new silver with an old
  rejected file. ``validate`` detects exactly that (bronze != silver + rejected
  -> status ``fail``) and re-running the date repairs it.
* a process killed outright can leave files under ``_staging/`` (a folder
  lake's, or S3 objects of older versions; an S3 lake's local staging is in the
  process's spill folder, removed at exit): no glob or reader ever looks there.
  Run ids start with the run's start time, so ``sweep_staging`` removes those of
  runs older than a bound (the medallion steps call it before they stage).
* each day is one fixed key per dataset, so a re-run overwrites exactly that
  day's files and nothing else.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import io
import logging
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.adapters.lake.layout import (
    STAGING_PREFIX,
    Dataset,
    new_run_id,
    run_started,
    staging_key,
)

log = logging.getLogger(__name__)

PARQUET_COMPRESSION = "zstd"
# rows per Parquet row group written from Arrow (the extract's bronze, among others): DuckDB's
# own default. DuckDB and Trino read one row group per thread, and pyarrow's default (a
# million rows) left a day's bronze in one group, read by one of the cores.
ROW_GROUP_ROWS = 122_880


class Staging:
    """Outputs of one step, written under a staging prefix and published together."""

    def __init__(self, lake: Lake, run_id: str) -> None:
        self.lake = lake
        self.run_id = run_id
        self.pending: list[tuple[str, str]] = []  # (bucket, final key)

    def target(self, dataset: Dataset, day: dt.date) -> str:
        """A URI DuckDB can ``COPY ... TO``; it becomes ``dataset``/``day`` on publish."""
        key = dataset.key(day)
        self.pending.append((dataset.bucket, key))
        return self.lake.stage_uri(dataset.bucket, staging_key(self.run_id, key))

    def put_bytes(self, dataset: Dataset, day: dt.date, data: bytes) -> None:
        """Stage raw bytes (e.g. a JSON report) for ``dataset``/``day``."""
        key = dataset.key(day)
        self.pending.append((dataset.bucket, key))
        self.lake.put_staged(dataset.bucket, staging_key(self.run_id, key), data)

    def put_table(self, dataset: Dataset, day: dt.date, table: pa.Table) -> None:
        """Stage an Arrow table as Parquet for ``dataset``/``day``."""
        self.put_bytes(dataset, day, parquet_bytes(table))


class Lake(ABC):
    """Date-partitioned Parquet datasets in three buckets, on S3 or in a folder."""

    kind: str

    # ---- primitives every backend implements ----
    @abstractmethod
    def uri(self, bucket: str, key: str) -> str:
        """The URI DuckDB reads ``<bucket>/<key>`` from."""

    @abstractmethod
    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object atomically (replacing any previous one)."""

    @abstractmethod
    def get_bytes(self, bucket: str, key: str) -> bytes:
        """Read a whole object; FileNotFoundError when absent."""

    @abstractmethod
    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists."""

    @abstractmethod
    def modified(self, bucket: str, key: str) -> dt.datetime | None:
        """When the object was last written (UTC); None when absent."""

    @abstractmethod
    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys under a prefix, recursively, sorted."""

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove an object; absent is fine."""

    @abstractmethod
    def promote(self, bucket: str, src_key: str, dst_key: str) -> None:
        """Atomically replace ``dst_key`` by the complete object ``src_key`` (then drop it)."""

    @abstractmethod
    def check(self) -> None:
        """Make sure the lake is reachable and the buckets exist; else ServiceUnavailable."""

    @abstractmethod
    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let ``con`` read and write this lake's URIs."""

    def writable_uri(self, bucket: str, key: str) -> str:
        """A URI DuckDB may ``COPY ... TO`` (a folder needs its parent directory)."""
        return self.uri(bucket, key)

    # ---- shared work ----
    def dataset_uri(self, dataset: Dataset, day: dt.date) -> str:
        return self.uri(dataset.bucket, dataset.key(day))

    def glob_uri(self, dataset: Dataset) -> str:
        return self.uri(dataset.bucket, dataset.glob_key)

    def has(self, dataset: Dataset, day: dt.date) -> bool:
        return self.exists(dataset.bucket, dataset.key(day))

    def partitions(self, dataset: Dataset) -> list[dt.date]:
        """Every day present for a dataset, sorted."""
        days = (dataset.day_of(k) for k in self.list_keys(dataset.bucket, dataset.prefix))
        return sorted({d for d in days if d is not None})

    def write_table(self, dataset: Dataset, day: dt.date, table: pa.Table) -> str:
        """Write one day of a dataset as Parquet, atomically; returns its URI."""
        self.put_bytes(dataset.bucket, dataset.key(day), parquet_bytes(table))
        return self.dataset_uri(dataset, day)

    def read_table(self, dataset: Dataset, day: dt.date) -> pa.Table:
        return pq.read_table(io.BytesIO(self.get_bytes(dataset.bucket, dataset.key(day))))

    @contextmanager
    def staged(self, run_id: str | None = None) -> Iterator[Staging]:
        """Stage a step's outputs; publish them all on success, discard them on error."""
        staging = Staging(self, run_id or new_run_id())
        try:
            yield staging
        except BaseException:
            self._discard(staging)
            raise
        # every output is complete: only now do the final keys change
        for bucket, key in staging.pending:
            self.publish(bucket, staging_key(staging.run_id, key), key)

    # where a step's outputs wait (``staged``): by default beside the final keys
    def stage_uri(self, bucket: str, staged_key: str) -> str:
        """Where DuckDB writes a staged output."""
        return self.writable_uri(bucket, staged_key)

    def put_staged(self, bucket: str, staged_key: str, data: bytes) -> None:
        self.put_bytes(bucket, staged_key, data)

    def publish(self, bucket: str, staged_key: str, key: str) -> None:
        """A complete staged output becomes ``key`` (atomically)."""
        self.promote(bucket, staged_key, key)

    def discard(self, bucket: str, staged_key: str) -> None:
        self.delete(bucket, staged_key)

    def sweep_staging(
        self, bucket: str, older_than: dt.timedelta, now: dt.datetime | None = None
    ) -> list[str]:
        """Delete what runs started more than ``older_than`` ago left under ``_staging/``
        (a killed process cannot clean up after itself); the keys removed.

        A live run's files are younger than any sensible bound; keys whose run id does not
        start with a time are not ours and stay.
        """
        cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
        removed = []
        for key in self.list_keys(bucket, f"{STAGING_PREFIX}/"):
            started = run_started(key[len(STAGING_PREFIX) + 1 :].split("/", 1)[0])
            if started is not None and started < cutoff:
                self.delete(bucket, key)
                removed.append(key)
        if removed:
            log.warning(
                "removed %d staged object(s) of runs killed before %s from %s/%s/",
                len(removed),
                cutoff.isoformat(timespec="seconds"),
                bucket,
                STAGING_PREFIX,
            )
        return removed

    def _discard(self, staging: Staging) -> None:
        for bucket, key in staging.pending:
            try:
                self.discard(bucket, staging_key(staging.run_id, key))
            except Exception:  # cleanup must not hide the original error
                log.warning("could not remove staged %s/%s", bucket, key, exc_info=True)

    def connect(self, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection that reads and writes this lake."""
        config: dict[str, str | bool | int | float | list[str]] = {
            # everything DuckDB needs is loaded explicitly, nothing is fetched
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "temp_directory": spill_dir(),
            # outputs whose order matters say ORDER BY; the rest may stream in parallel
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        con = _database(tuple(sorted(config.items())), os.getpid()).cursor()
        # the S3 secret is the database's: two threads replacing it at once conflict
        with _CONFIGURE:
            self.configure_duckdb(con)
        return con


# functools.cache computes a missing value in every thread that asks for it at once, and
# keeps one: two threads' first connections would land in different databases
_ONCE = threading.Lock()
_CONFIGURE = threading.Lock()


def _database(config: tuple[tuple[str, Any], ...], pid: int) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB database per process and configuration; each ``connect`` is a
    cursor on it (its own session: temp tables, TimeZone; but tables and views are the
    database's). Loading httpfs into a new database costs about 85 ms of CPU, which every
    step of a daily run paid twice; a cursor reuses the loaded extension. The pid keeps a
    forked child off its parent's database."""
    with _ONCE:
        return _new_database(config, pid)


@functools.cache
def _new_database(config: tuple[tuple[str, Any], ...], pid: int) -> duckdb.DuckDBPyConnection:
    del pid  # only part of the cache key
    return duckdb.connect(config=dict(config))


def spill_dir() -> str:
    """This process's own folder for DuckDB to spill to: created 0700 by ``mkdtemp`` (a
    fixed name in /tmp could be created first, or read, by another user), removed at exit."""
    with _ONCE:
        return _new_spill_dir()


@functools.cache
def _new_spill_dir() -> str:
    path = tempfile.mkdtemp(prefix="shoplake-duckdb-")
    atexit.register(shutil.rmtree, path, True)
    return path


def parquet_bytes(table: pa.Table) -> bytes:
    """Serialise an Arrow table as one Parquet file in memory."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION, row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue()
