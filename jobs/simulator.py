"""Use case: a live shop. New orders and status changes, in real time, in PostgreSQL.

By default the shop model of ``seed`` runs live (``jobs.domain.live``): orders arrive
with its hour and weekday rhythm at the seeded history's daily volume (measured from the
database: the mean of the full days before today, weekday-corrected), from the same
customers, products and tastes, with the deliberate defects, and start ``pending``; each
then follows its own planned way through the statuses (``jobs.domain.lifecycle``), so
today's KPIs compare with the same time yesterday. ``speed`` multiplies the volume (same
rhythm) for a busier screen. A restart plans again the live orders of the last ten days
(those whose ``created_at`` is after their ``order_date``), so none is left behind.

With ``rate`` instead (the original mode, kept for benchmarks and load): a flat ``rate``
orders/s all day, and each tick moves older orders of the last day in proportion to
the new ones (``TRANSITIONS``). Every tick is one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from jobs import seed as seed_job
from jobs.adapters import source_db
from jobs.domain import generator, lifecycle
from jobs.domain.live import LiveShop, as_new
from jobs.errors import UsageError
from jobs.settings import Settings

log = logging.getLogger(__name__)

# (from, to, moves per new order, minimum age in s since the last update)
TRANSITIONS: tuple[tuple[str, str, float, float], ...] = (
    ("pending", "processing", 0.85, 2.0),
    ("pending", "cancelled", 0.05, 2.0),
    ("processing", "completed", 0.80, 5.0),
    ("processing", "cancelled", 0.02, 5.0),
    ("completed", "returned", 0.03, 10.0),
)
LOOKBACK = dt.timedelta(hours=24)  # orders older than this are left as they are
# far above what one PostgreSQL on a laptop takes; above it a rate is a typo
MAX_RATE = 10_000.0
MAX_SPEED = 1_000.0
# the live shop's volume when the database has no full day of orders to measure it on
DEFAULT_ORDERS_PER_DAY = seed_job.DEFAULT_ORDERS_PER_DAY
VOLUME_DAYS = 28  # full days before today that measure the history's daily volume

_MOVE_SQL = """
WITH picked AS (
    SELECT order_id FROM orders
    WHERE order_date >= %(since)s AND status = %(src)s AND updated_at <= %(ripe)s
    ORDER BY order_date LIMIT %(n)s FOR UPDATE SKIP LOCKED)
UPDATE orders o SET status = %(dst)s, updated_at = %(now)s
FROM picked WHERE o.order_id = picked.order_id
"""
_DAY_COUNTS_SQL = """
SELECT (order_date AT TIME ZONE %(tz)s)::date AS day, count(*) FROM orders
WHERE order_date >= %(start)s AND order_date < %(end)s GROUP BY 1
"""
# live orders (written after they were placed) that may still change status
_LIVE_SQL = """
SELECT order_id, order_date FROM orders
WHERE order_date >= %s AND created_at > order_date
  AND status IN ('pending', 'processing', 'completed')
"""
_STEP_SQL = """
UPDATE orders SET status = %(dst)s, updated_at = %(now)s
WHERE order_id = ANY(%(ids)s) AND status = %(src)s
"""
_MAX_SEQ_SQL = """
SELECT coalesce(max(substring(order_id FROM '-([0-9]+)$')::bigint), 0) FROM orders
WHERE order_date >= %s AND order_date < %s AND order_id LIKE %s
"""


@dataclass
class SimStats:
    """What the simulator did so far."""

    inserted: int = 0
    defects: int = 0
    moves: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        """One human line."""
        moves = ", ".join(f"{k} {v}" for k, v in sorted(self.moves.items())) or "none"
        rate = self.inserted / self.seconds if self.seconds else 0.0
        return (
            f"inserted {self.inserted:,} orders ({self.defects:,} with defects, "
            f"{rate:.1f}/s) in {self.seconds:.0f}s; status moves: {moves}"
        )


def count_defects(table: pa.Table) -> int:
    """Rows carrying at least one of the generator's deliberate defects."""
    price, qty, total = table["price"], table["quantity"], table["total"]
    status, customer = table["status"], table["customer_id"]
    expected = pc.multiply(pc.abs(price.cast(pa.float64())), qty.cast(pa.float64()))
    bad = [
        pc.less(price, pa.scalar(0, price.type)),
        pc.less_equal(qty, 0),
        pc.greater(qty, 50),
        pc.or_kleene(pc.is_null(status), pc.equal(status, "")),
        pc.is_null(customer),
        pc.starts_with(table["product_id"], "PROD-X"),
        pc.greater(pc.abs(pc.subtract(total.cast(pa.float64()), expected)), 0.01),
    ]
    mask = bad[0]
    for cond in bad[1:]:
        mask = pc.or_kleene(mask, cond)
    return int(pc.sum(pc.fill_null(mask, True).cast(pa.int64())).as_py() or 0)


def history_volume(
    conn: psycopg.Connection, tz: str, today: dt.date, days: int = VOLUME_DAYS
) -> float | None:
    """The history's orders per average day: the full days before ``today`` (from the
    first with orders, at most ``days`` back), each divided by its weekday's weight."""
    start, _ = generator.day_window(today - dt.timedelta(days=days), tz)
    end, _ = generator.day_window(today, tz)
    rows = conn.execute(_DAY_COUNTS_SQL, {"tz": tz, "start": start, "end": end}).fetchall()
    counts = {day: int(n) for day, n in rows if n}
    if not counts:
        return None
    first = min(counts)
    span = [first + dt.timedelta(days=k) for k in range((today - first).days)]
    weights = sum(generator.daily_mean(1.0, day) for day in span)
    return sum(counts.values()) / weights


class Simulator:
    """The live shop (``speed`` times the history's volume), or a flat ``rate`` orders/s;
    call ``tick`` or ``run``."""

    def __init__(
        self,
        settings: Settings,
        rate: float | None = None,
        seed: int = 42,
        *,
        speed: float = 1.0,
        orders_per_day: float | None = None,
    ) -> None:
        if rate is not None and not 0 < rate <= MAX_RATE:  # also refuses nan
            raise UsageError(f"--rate must be above 0 and at most {MAX_RATE:g} orders/s")
        if not 0 < speed <= MAX_SPEED:
            raise UsageError(f"--speed must be above 0 and at most {MAX_SPEED:g}")
        if orders_per_day is not None and not 0 < orders_per_day <= MAX_RATE * 86_400:
            raise UsageError("--orders-per-day must be above 0")
        self.settings = settings
        self.rate = rate
        self.speed = speed
        self.orders_per_day = orders_per_day
        self.seed = seed
        self.tz = settings.timezone
        self.rng = np.random.default_rng([seed, 2, time.time_ns()])
        self.stats = SimStats()
        self._carry: dict[str, float] = {}
        self._model: generator.ShopModel | None = None
        self._shop: LiveShop | None = None
        self._seq: tuple[dt.date, int] | None = None

    def describe(self) -> str:
        """What this simulator does, in one line (after ``model``/``shop``)."""
        if self.rate is not None:
            return f"a flat {self.rate:g} orders/s"
        per_day = self._shop.orders_per_day * self.speed if self._shop else 0.0
        return (
            f"the shop model at {self.speed:g}x its history's volume: "
            f"{per_day:,.0f} orders on an average day, following its daily rhythm"
        )

    def model(self, conn: psycopg.Connection) -> generator.ShopModel:
        """The seed's shop model, sized like the customers and products in the database."""
        if self._model is None:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products)"
            ).fetchone()
            n_customers, n_products = row if row else (0, 0)
            if not n_customers or not n_products:
                raise UsageError("no customers or products yet: run `shoplake seed` first")
            self._model = generator.build_model(self.seed, n_customers, n_products)
            self._check_catalogue(conn, self._model)
        return self._model

    def shop(self, conn: psycopg.Connection, now: dt.datetime) -> LiveShop:
        """The live shop at the history's volume, with the live orders' plans picked up."""
        if self._shop is None:
            model = self.model(conn)
            per_day = self.orders_per_day
            if per_day is None:
                today = now.astimezone(ZoneInfo(self.tz)).date()
                per_day = history_volume(conn, self.tz, today)
                if per_day is None:
                    log.warning(
                        "no full day of orders to measure the volume on: simulating "
                        "%d orders a day",
                        DEFAULT_ORDERS_PER_DAY,
                    )
                    per_day = float(DEFAULT_ORDERS_PER_DAY)
            self._shop = LiveShop(model, per_day, self.rng, tz=self.tz, speed=self.speed)
            rows = conn.execute(_LIVE_SQL, (now - lifecycle.HORIZON,)).fetchall()
            if rows:
                ids = [r[0] for r in rows]
                self._shop.schedule.add(lifecycle.plan(ids, [generator.to_us(r[1]) for r in rows]))
                log.info("picked up the plans of %d live orders", len(rows))
        return self._shop

    def _check_catalogue(self, conn: psycopg.Connection, model: generator.ShopModel) -> None:
        ids = model.products["product_id"].to_pylist()[:5]
        names = model.products["product_name"].to_pylist()[:5]
        rows: dict[str, str] = dict(
            conn.execute(
                "SELECT product_id, product_name FROM products WHERE product_id = ANY(%s)", (ids,)
            ).fetchall()
        )
        if [rows.get(i) for i in ids] != names:
            log.warning(
                "the products in the database were not seeded with --seed %s: new "
                "orders will name products differently (pass the seed's --seed)",
                self.seed,
            )

    def _due(self, key: str, amount: float) -> int:
        # fractional orders carry over, so a low rate still inserts at the right pace
        due = self._carry.get(key, 0.0) + amount
        n = int(due)
        self._carry[key] = due - n
        return n

    def _next_seq(self, conn: psycopg.Connection, now: dt.datetime) -> int:
        day = now.astimezone(ZoneInfo(self.tz)).date()
        if self._seq is None or self._seq[0] != day:
            start, end = generator.day_window(day, self.tz)
            prefix = f"ORD-{day:%Y%m%d}-%"
            row = conn.execute(_MAX_SEQ_SQL, (start, end, prefix)).fetchone()
            self._seq = (day, int(row[0]) if row else 0)
        return self._seq[1] + 1

    def _insert(self, conn: psycopg.Connection, rows: pa.Table, first: int) -> int:
        inserted = source_db.copy_in(conn, "orders", rows, skip_existing=True)
        assert self._seq is not None
        self._seq = (self._seq[0], first + rows.num_rows - 1)
        self.stats.defects += count_defects(rows)
        return inserted

    def tick(self, conn: psycopg.Connection, since: dt.datetime, now: dt.datetime) -> int:
        """Insert the orders due in ``[since, now)`` and advance statuses; one commit."""
        # orders of one tick stay within one local day, so their ids share a day sequence
        day_start, _ = generator.day_window(now.astimezone(ZoneInfo(self.tz)).date(), self.tz)
        start = max(since, day_start)
        if self.rate is None:
            inserted = self._live_tick(conn, start, now)
        else:
            inserted = self._flat_tick(conn, start, since, now)
        conn.commit()
        self.stats.inserted += inserted
        return inserted

    def _live_tick(self, conn: psycopg.Connection, start: dt.datetime, now: dt.datetime) -> int:
        shop = self.shop(conn, now)
        inserted = 0
        if now > start:
            first = self._next_seq(conn, now)
            rows = shop.place(start, now, first_seq=first)
            if rows.num_rows:
                inserted = self._insert(conn, rows, first)
        self._live_moves(conn, now)
        return inserted

    def _live_moves(self, conn: psycopg.Connection, now: dt.datetime) -> None:
        """Apply the planned status changes due by ``now`` (no commit)."""
        assert self._shop is not None
        by_step: dict[tuple[str, str], list[str]] = {}
        for step in self._shop.due(now):
            by_step.setdefault((step.src, step.dst), []).append(step.order_id)
        for src, dst in lifecycle.STEP_ORDER:  # an order late by hours may take two steps
            ids = by_step.get((src, dst))
            if ids:
                params = {"src": src, "dst": dst, "ids": ids, "now": now}
                moved = conn.execute(_STEP_SQL, params).rowcount
                self.stats.moves[f"{src}->{dst}"] += max(moved, 0)

    def _flat_tick(
        self, conn: psycopg.Connection, start: dt.datetime, since: dt.datetime, now: dt.datetime
    ) -> int:
        assert self.rate is not None
        elapsed = (now - since).total_seconds()
        n = self._due("insert", self.rate * elapsed)
        model = self.model(conn)
        inserted = 0
        if n and now > start:
            first = self._next_seq(conn, now)
            rows = as_new(
                generator.generate_orders(
                    model, start, now, n, self.rng, tz=self.tz, first_seq=first, as_of=now
                )
            )
            inserted = self._insert(conn, rows, first)
        for src, dst, per_order, min_age in TRANSITIONS:
            k = self._due(f"{src}->{dst}", self.rate * elapsed * per_order)
            if k:
                params = {
                    "since": now - LOOKBACK,
                    "src": src,
                    "dst": dst,
                    "n": k,
                    "ripe": now - dt.timedelta(seconds=min_age),
                    "now": now,
                }
                moved = conn.execute(_MOVE_SQL, params).rowcount
                self.stats.moves[f"{src}->{dst}"] += max(moved, 0)
        return inserted

    def run(
        self,
        stop: threading.Event,
        duration: float | None = None,
        every: float = 1.0,
        report_every: float = 10.0,
        on_report: Callable[[SimStats], None] = lambda stats: None,
        on_commit: Callable[[dt.datetime, int], None] = lambda at, n: None,
        on_start: Callable[[str], None] = lambda line: None,
    ) -> SimStats:
        """Tick every ``every`` s until ``stop`` or ``duration``, reporting as it goes."""
        t0 = time.monotonic()
        last_report = t0
        with source_db.session(self.settings.dsn) as conn:
            since = dt.datetime.now(dt.UTC)
            self.model(conn)
            if self.rate is None:
                self.shop(conn, since)
                conn.commit()
            on_start(self.describe())
            while not stop.wait(every):
                now = dt.datetime.now(dt.UTC)
                on_commit(now, self.tick(conn, since, now))
                since = now
                self.stats.seconds = time.monotonic() - t0
                if time.monotonic() - last_report >= report_every:
                    last_report = time.monotonic()
                    on_report(self.stats)
                if duration is not None and self.stats.seconds >= duration:
                    break
        self.stats.seconds = time.monotonic() - t0
        return self.stats
