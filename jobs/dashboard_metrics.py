"""Use case: the dashboard micro-batch. Today's orders -> metrics -> lake -> Redis.

Each run reads only today's orders (a range on the ``order_date`` index), computes
the metrics with the pure functions in ``jobs.domain.dashboard``, writes
``gold/dashboard/...`` and then notifies Redis. Every object is written atomically;
all six carry the run id in their Parquet metadata, so a reader can tell a set
written by one run from a mix caught between two runs (``read_latest`` retries).
Redis being down costs the notification only: the lake is written and a warning logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
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
from jobs.errors import ServiceUnavailable, UsageError
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


def compute(
    orders: pa.Table, yesterday: pa.Table, day: dt.date, now: dt.datetime, tz: str
) -> dict[str, pa.Table]:
    """The five metric tables from today's raw orders and yesterday's counted rows so far."""
    con = duckdb.connect(
        config={"autoload_known_extensions": False, "autoinstall_known_extensions": False}
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_orders", orders)
        # computed once, read by the five aggregates
        con.register("_rel", dashboard.countable(con.table("_orders")))
        con.execute("CREATE TEMP TABLE _counted AS SELECT * FROM _rel")
        rows = con.table("_counted")
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
            "hourly_stats": dashboard.hourly_stats(rows, tz).to_arrow_table(),
        }
    finally:
        con.close()


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
    """One micro-batch per ``run()``; keeps yesterday's counted rows between runs."""

    def __init__(self, of: Settings | Resources, yesterday_refresh_s: float = 300.0) -> None:
        res = Resources.of(of)
        self.settings = settings = res.settings
        self.tz = zone(settings)
        self.lake = res.lake
        self.channel = res.dashboard
        self.yesterday_refresh_s = yesterday_refresh_s
        self._yesterday: tuple[dt.date, float, pa.Table] | None = None
        self._checked = False

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
        orders = source_db.read_orders_for_day(self.settings.dsn, day, self.settings.timezone)
        meta = {
            META_RUN_ID: run_id.encode(),
            META_DAY: day.isoformat().encode(),
            META_TZ: self.settings.timezone.encode(),
        }
        # the big Parquet (today's orders) is encoded and uploaded while the metrics are
        # computed: both release the GIL, and it is half the run on a million orders
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="orders-today") as pool:
            written = pool.submit(self._write, DASHBOARD_ORDERS_TODAY, orders, meta)
            yesterday = self._yesterday_rows(day - dt.timedelta(days=1))
            tables = compute(orders, yesterday, day, now, self.settings.timezone)
            written.result()
        for name, table in tables.items():
            self._write(DASHBOARD_METRICS[name], table, meta)
        metrics = dashboard.payload_metrics(tables, day, self.settings.timezone, run_id)
        message = update_message(now, run_id, metrics)
        subscribers: int | None = None
        try:
            subscribers = self.channel.publish(message)
        except ServiceUnavailable as exc:
            log.warning("dashboard metrics written to the lake but not announced: %s", exc)
        counted = int(tables["overall_metrics"].column("total_orders")[0].as_py())
        return MetricsRun(
            run_id, day, orders.num_rows, counted, time.perf_counter() - t0, subscribers, message
        )

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
    return MetricsJob(settings).run()


def run_every(
    settings: Settings,
    every: float,
    stop: threading.Event,
    on_run: Callable[[MetricsRun], None] = lambda run: None,
    job: MetricsJob | None = None,
) -> None:
    """A micro-batch every ``every`` seconds until ``stop``; a failed run is logged, not fatal."""
    job = job or MetricsJob(settings)
    next_at = time.monotonic()
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
