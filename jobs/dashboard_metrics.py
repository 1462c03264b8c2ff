"""Use case: the dashboard micro-batch. Today's orders -> metrics -> lake -> Redis.

Each run reads only today's orders (a range on the ``order_date`` index), computes
the metrics with the pure functions in ``jobs.domain.dashboard``, writes
``gold/dashboard/...`` and then notifies Redis. Every object is written atomically;
all six carry the run id in their Parquet metadata, so a reader can tell a set
written by one run from a mix caught between two runs (``read_latest`` retries).
Redis being down costs the notification only: the lake is written and a warning logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.adapters import source_db
from jobs.adapters.lake import Lake, parquet_bytes
from jobs.adapters.lake.layout import (
    DASHBOARD_METRICS,
    DASHBOARD_ORDERS_TODAY,
    Snapshot,
    new_run_id,
)
from jobs.bootstrap import Resources
from jobs.domain import dashboard
from jobs.errors import ServiceUnavailable, ShoplakeError, UsageError
from jobs.settings import Settings

log = logging.getLogger(__name__)

EVENT = dashboard.EVENT
META_RUN_ID = b"shoplake.run_id"
META_DAY = b"shoplake.date"
META_TZ = b"shoplake.timezone"
YESTERDAY_COLUMNS = ["order_date", "customer_id", "quantity", "total"]


@dataclass(frozen=True)
class MetricsRun:
    """What one micro-batch did."""

    run_id: str
    day: dt.date
    orders: int
    counted: int
    seconds: float
    subscribers: int | None  # None: Redis was not reachable
    message: dashboard.DashboardUpdate

    def line(self) -> str:
        """One human line for the CLI."""
        kpi = self.message.metrics.overall_metrics
        told = (
            "Redis unreachable, lake only"
            if self.subscribers is None
            else f"published to {self.subscribers} subscriber(s)"
        )
        return (
            f"metrics {self.day}: {self.orders:,} orders read, {kpi.total_orders or 0:,} "
            f"counted, revenue {kpi.total_revenue or 0:,.2f} in {self.seconds:.2f}s; {told}"
        )


def zone(settings: Settings) -> ZoneInfo:
    """The shop's time zone, or a one-line usage error."""
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"SHOPLAKE_TIMEZONE: unknown time zone '{settings.timezone}'") from None


def same_time_yesterday(now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Yesterday at today's local clock time (not simply 24 h ago across a DST change)."""
    local = now.astimezone(tz)
    day = local.date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, local.time(), tzinfo=tz).astimezone(dt.UTC)


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={"autoload_known_extensions": False, "autoinstall_known_extensions": False}
    )
    con.execute("SET TimeZone = 'UTC'")
    return con


def compute(
    orders: pa.Table, yesterday: pa.Table, day: dt.date, now: dt.datetime, tz: str
) -> dict[str, pa.Table]:
    """The five metric tables from today's raw orders and yesterday's counted rows so far."""
    con = _duckdb()
    try:
        con.register("_orders", orders)
        # computed once, read by the five aggregates
        con.register("_rel", dashboard.countable(con.table("_orders")))
        con.execute("CREATE TEMP TABLE _counted AS SELECT * FROM _rel")
        return compute_counted(con, con.table("_counted"), yesterday, day, now, tz)
    finally:
        con.close()


def compute_counted(
    con: duckdb.DuckDBPyConnection,
    rows: duckdb.DuckDBPyRelation,
    yesterday: pa.Table,
    day: dt.date,
    now: dt.datetime,
    tz: str,
) -> dict[str, pa.Table]:
    """The five metric tables from today's counted rows (a relation of ``con``); rows that
    carry ``_local_hour`` already are not converted to local time again."""
    cutoff = same_time_yesterday(now, ZoneInfo(tz))
    prev = dashboard.until(con.from_arrow(yesterday), cutoff)
    prev_kpis = dashboard.yesterday_kpis(prev, day - dt.timedelta(days=1)).to_arrow_table()
    overall = dashboard.overall_metrics(rows, day, now).to_arrow_table()
    # evaluated one by one: the functions share DuckDB view names
    return {
        "overall_metrics": dashboard.with_yesterday(overall, prev_kpis),
        "top_products": dashboard.top_products(rows).to_arrow_table(),
        "category_stats": dashboard.category_stats(rows, day).to_arrow_table(),
        "regional_stats": dashboard.regional_stats(rows, day).to_arrow_table(),
        "hourly_stats": (
            dashboard.hourly_by_local_hour(rows)
            if dashboard.LOCAL_HOUR in rows.columns
            else dashboard.hourly_stats(rows, tz)
        ).to_arrow_table(),
    }


@dataclass(frozen=True)
class DayRows:
    """A day's rows as kept: every version read, and which are current (None: all are)."""

    rows: pa.Table
    live: np.ndarray | None = None

    @property
    def count(self) -> int:
        return self.rows.num_rows if self.live is None else int(self.live.sum())

    def table(self) -> pa.Table:
        """The current rows (a copy of the kept ones: the upload thread's work, not the run's)."""
        return self.rows if self.live is None else self.rows.filter(pa.array(self.live))


class TodayRows:
    """Today's orders kept between runs and brought up to date with what changed.

    The first run of a day reads the whole day; later runs read only the rows written
    since the previous read's snapshot (``source_db.read_day_changes``) and replace those
    orders here (``order_id`` is the source's primary key, so one version per order). A
    row deleted in the source, or moved to another day, leaves the counts apart: then the
    day is read again in full, as it is when the transaction counter wraps.

    The raw rows stay an Arrow table (what the lake's ``orders_today`` is written from):
    changed rows are appended and the versions they replace marked, since copying a million
    rows to drop a few thousand would cost more than the rest of the run (the copy is made
    by the upload, after the figures are out, and the table compacted once a quarter of it
    is stale). The counted rows (silver-clean, counted statuses, with their local hour) are a DuckDB
    table beside them, so a run aggregates rows already in memory instead of applying
    the rules to a million rows again.
    """

    def __init__(self, dsn: str, tz: str) -> None:
        self.dsn, self.tz = dsn, tz
        self.con = _duckdb()
        self.rows: pa.Table | None = None
        self.live: np.ndarray | None = None  # which rows are current (None: all)
        self.day: dt.date | None = None
        self.horizon: int | None = None
        self.full_reads = 0  # how often the whole day was read (tests and the benchmark)
        self._pg: psycopg.Connection | None = None

    def close(self) -> None:
        self.con.close()
        if self._pg is not None:
            self._pg.close()

    def _changes(self, day: dt.date, since: int) -> source_db.DayChanges | None:
        """What changed since ``since``, on the connection kept between runs."""
        for attempt in (1, 2):
            if self._pg is None or self._pg.closed:
                self._pg = source_db.connect(self.dsn, autocommit=True)
            try:
                return source_db.read_day_changes(self._pg, day, self.tz, since)
            except psycopg.OperationalError as exc:
                # the kept connection was lost (a server restart, an idle timeout): once
                # more on a new one, then the run fails and the next one logs in again
                self._pg.close()
                if attempt == 2:
                    raise source_db.failed(exc, self.dsn) from None
            except psycopg.Error as exc:
                self._pg.close()
                raise source_db.failed(exc, self.dsn) from None
        raise AssertionError("unreachable")

    def refresh(self, day: dt.date) -> DayRows:
        """Today's rows, brought up to date."""
        if day != self.day or self.horizon is None or self.rows is None:
            return self._read_all(day)
        changes = self._changes(day, self.horizon)
        if changes is None:
            return self._read_all(day)
        if changes.rows.num_rows:
            self._replace(changes.rows)
        kept = DayRows(self.rows, self.live)
        if kept.count != changes.total:  # deleted or moved away since the last read
            log.info(
                "dashboard: %d rows kept, %d in the source: reading the day again",
                kept.count,
                changes.total,
            )
            return self._read_all(day)
        self.horizon = changes.horizon
        return kept

    def _counted(self, table: str) -> duckdb.DuckDBPyRelation:
        counted = dashboard.countable(self.con.table(table))
        return dashboard.with_local_hour(counted, self.tz)

    def _read_all(self, day: dt.date) -> DayRows:
        # the horizon is taken before the read: whatever the read misses comes after it
        self.horizon = None
        horizon = source_db.snapshot_horizon(self.dsn)
        orders = source_db.read_orders_for_day(self.dsn, day, self.tz)
        self._load(orders)
        self.day, self.horizon = day, horizon
        self.full_reads += 1
        return DayRows(orders)

    def _load(self, orders: pa.Table) -> None:
        """Keep ``orders`` as the day's rows, and their counted rows beside."""
        con = self.con
        con.register("_orders", orders)
        try:
            con.register("_rel", self._counted("_orders"))
            con.execute("CREATE OR REPLACE TABLE _counted AS SELECT * FROM _rel")
        finally:
            con.unregister("_orders")
            con.unregister("_rel")
        self.rows, self.live = orders, None

    def _replace(self, changed: pa.Table) -> None:
        assert self.rows is not None
        changed = changed.cast(self.rows.schema)
        con = self.con
        con.register("_changed", changed)
        try:
            con.execute("BEGIN")
            con.execute("DELETE FROM _counted WHERE order_id IN (SELECT order_id FROM _changed)")
            con.register("_rel", self._counted("_changed"))
            con.execute("INSERT INTO _counted SELECT * FROM _rel")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self.horizon = None  # unknown state: the next run reads the day again
            raise
        finally:
            con.unregister("_changed")
            con.unregister("_rel")
        stale = pc.is_in(self.rows["order_id"], value_set=changed["order_id"])
        before = np.ones(self.rows.num_rows, bool) if self.live is None else self.live
        # new arrays, never the one an earlier DayRows holds
        live: np.ndarray | None = np.concatenate(
            [before & ~stale.to_numpy(zero_copy_only=False), np.ones(changed.num_rows, bool)]
        )
        rows = pa.concat_tables([self.rows, changed])
        assert live is not None
        if live.sum() < 0.75 * len(live):  # a quarter stale: compact once
            rows, live = rows.filter(pa.array(live)), None
        self.rows, self.live = rows, live

    def metrics(self, yesterday: pa.Table, day: dt.date, now: dt.datetime) -> dict[str, pa.Table]:
        return compute_counted(self.con, self.con.table("_counted"), yesterday, day, now, self.tz)


def counted_rows(orders: pa.Table) -> pa.Table:
    """The counted rows of a day, only the columns the KPIs need (yesterday's cache)."""
    con = duckdb.connect()
    try:
        con.register("_orders", orders)
        rel = dashboard.countable(con.table("_orders")).project(", ".join(YESTERDAY_COLUMNS))
        return rel.to_arrow_table()
    finally:
        con.close()


class MetricsJob:
    """One micro-batch per ``run()``; keeps today's rows (brought up to date each run) and
    yesterday's counted rows (re-read every few minutes) between runs."""

    def __init__(self, of: Settings | Resources, yesterday_refresh_s: float = 300.0) -> None:
        res = Resources.of(of)
        self.settings = settings = res.settings
        self.tz = zone(settings)
        self.lake = res.lake
        self.channel = res.dashboard
        self.yesterday_refresh_s = yesterday_refresh_s
        self._yesterday: tuple[dt.date, float, pa.Table] | None = None
        self._checked = False
        self.today = TodayRows(settings.dsn, settings.timezone)
        # today's raw orders go to the lake after the run has published its figures: one
        # upload at a time, each run first waits for the one before
        self._uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orders-today")
        self._upload: Future[None] | None = None

    def flush(self) -> None:
        """Wait until the last run's ``orders_today`` is in the lake (raises its failure)."""
        upload, self._upload = self._upload, None
        if upload is not None:
            upload.result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._uploads.shutdown()
            self.today.close()

    def _settle_upload(self) -> None:
        try:
            self.flush()
        except ShoplakeError as exc:  # this run writes a newer one: say so, go on
            log.warning("dashboard: the previous run's orders_today was not written: %s", exc)

    def _yesterday_rows(self, day: dt.date) -> pa.Table:
        # yesterday barely changes: re-read it every few minutes, not every 30 s
        cached = self._yesterday
        if cached and cached[0] == day and time.monotonic() - cached[1] < self.yesterday_refresh_s:
            return cached[2]
        raw = source_db.read_orders_for_day(self.settings.dsn, day, self.settings.timezone)
        rows = counted_rows(raw)
        self._yesterday = (day, time.monotonic(), rows)
        return rows

    def run(self, now: dt.datetime | None = None) -> MetricsRun:
        """Read today's orders, compute, write the lake, notify Redis."""
        t0 = time.perf_counter()
        now = now or dt.datetime.now(dt.UTC)
        day = now.astimezone(self.tz).date()
        run_id = new_run_id(now)
        if not self._checked:
            self.lake.check()
            self._checked = True
        self._settle_upload()
        today = self.today.refresh(day)
        meta = {
            META_RUN_ID: run_id.encode(),
            META_DAY: day.isoformat().encode(),
            META_TZ: self.settings.timezone.encode(),
        }
        yesterday = self._yesterday_rows(day - dt.timedelta(days=1))
        tables = self.today.metrics(yesterday, day, now)
        for name, table in tables.items():
            self._write(DASHBOARD_METRICS[name], table, meta)
        metrics = dashboard.payload_metrics(tables, day, self.settings.timezone, run_id)
        message = update_message(now, run_id, metrics)
        subscribers: int | None = None
        try:
            subscribers = self.channel.publish(message)
        except ServiceUnavailable as exc:
            log.warning("dashboard metrics written to the lake but not announced: %s", exc)
        # the big Parquet (a million orders take a second to encode) is written after the
        # figures are out: the dashboard does not wait for it (``flush`` does)
        self._upload = self._uploads.submit(self._write_today, today, meta)
        counted = int(tables["overall_metrics"].column("total_orders")[0].as_py())
        return MetricsRun(
            run_id, day, today.count, counted, time.perf_counter() - t0, subscribers, message
        )

    def _write_today(self, today: DayRows, meta: dict[bytes, bytes]) -> None:
        self._write(DASHBOARD_ORDERS_TODAY, today.table(), meta)

    def _write(self, target: Snapshot, table: pa.Table, meta: dict[bytes, bytes]) -> None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        self.lake.put_bytes(target.bucket, target.key, parquet_bytes(table))


def update_message(
    now: dt.datetime, run_id: str, metrics: dashboard.DashboardMetrics
) -> dashboard.DashboardUpdate:
    """The ``dashboard:updates`` message of a run computed at ``now``."""
    return dashboard.make_update(now.isoformat(), run_id, metrics)


def run_once(settings: Settings) -> MetricsRun:
    """One micro-batch."""
    job = MetricsJob(settings)
    try:
        return job.run()
    finally:
        job.close()


def run_every(
    settings: Settings,
    every: float,
    stop: threading.Event,
    on_run: Callable[[MetricsRun], None] = lambda run: None,
    job: MetricsJob | None = None,
) -> None:
    """A micro-batch every ``every`` seconds until ``stop``; a failed run is logged, not fatal."""
    owned = job is None
    job = job or MetricsJob(settings)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            try:
                on_run(job.run())
            except ServiceUnavailable as exc:
                log.warning("dashboard metrics run failed: %s", exc)
            except Exception:  # the loop outlives one bad run; the next one may succeed
                log.exception("dashboard metrics run failed")
            # fixed rate: a slow run does not shift the schedule, it skips missed slots
            next_at += every
            now = time.monotonic()
            if next_at < now:
                next_at = now + every - ((now - next_at) % every)
            stop.wait(next_at - now)
    finally:
        if owned:
            with contextlib.suppress(ShoplakeError):  # logged by the next run's check
                job.close()


# ---- reading the latest metrics back (the dashboard's fallback when Redis is away) ----
def read_latest(lake: Lake, attempts: int = 3) -> dashboard.DashboardUpdate | None:
    """The last run's message rebuilt from the lake, or None before the first run.

    Each object is complete (atomic writes); a set mixing two runs (read while a run
    was writing) is read again, and after ``attempts`` the newest tables are used.
    """
    tables: dict[str, pa.Table] = {}
    for attempt in range(attempts):
        try:
            tables = {name: _read(lake, snap) for name, snap in DASHBOARD_METRICS.items()}
        except FileNotFoundError:
            return None
        if len({_meta(t, META_RUN_ID) for t in tables.values()}) == 1:
            break
        if attempt + 1 < attempts:
            time.sleep(0.2)
    overall = tables["overall_metrics"]
    day = dt.date.fromisoformat(_meta(overall, META_DAY))
    tz = _meta(overall, META_TZ)
    run_id = _meta(overall, META_RUN_ID)
    metrics = dashboard.payload_metrics(tables, day, tz, run_id)
    return dashboard.make_update(metrics.overall_metrics.last_updated.isoformat(), run_id, metrics)


def _read(lake: Lake, snap: Snapshot) -> pa.Table:
    return pq.read_table(pa.BufferReader(lake.get_bytes(snap.bucket, snap.key)))


def _meta(table: pa.Table, key: bytes) -> str:
    return (table.schema.metadata or {}).get(key, b"").decode()
