"""Use case: a live shop. Inserts new orders at a steady rate and moves orders through statuses.

New orders come from the same generator model as ``seed`` (same seed -> the same
customers, products, prices and tastes), with its deliberate defects, and start
``pending``. Each tick also advances older orders of the last day: pending ->
processing -> completed, some cancelled, a few completed ones returned. Every tick
is one transaction.
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

from jobs.adapters import source_db
from jobs.domain import generator
from jobs.domain.generator_catalog import STATUSES
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

_MOVE_SQL = """
WITH picked AS (
    SELECT order_id FROM orders
    WHERE order_date >= %(since)s AND status = %(src)s AND updated_at <= %(ripe)s
    ORDER BY order_date LIMIT %(n)s FOR UPDATE SKIP LOCKED)
UPDATE orders o SET status = %(dst)s, updated_at = %(now)s
FROM picked WHERE o.order_id = picked.order_id
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


def as_new(table: pa.Table) -> pa.Table:
    """Generated orders as just placed: ``pending`` (empty-status defects kept), never updated."""
    status = table["status"]
    placed = pc.if_else(pc.is_in(status, pa.array(STATUSES)), "pending", status)
    table = table.set_column(table.schema.get_field_index("status"), "status", placed)
    return table.set_column(
        table.schema.get_field_index("updated_at"), "updated_at", table["created_at"]
    )


class Simulator:
    """Inserts ``rate`` orders/s and advances statuses; call ``tick`` or ``run``."""

    def __init__(self, settings: Settings, rate: float, seed: int = 42) -> None:
        if not 0 < rate <= MAX_RATE:  # also refuses nan
            raise UsageError(f"--rate must be above 0 and at most {MAX_RATE:g} orders/s")
        self.settings = settings
        self.rate = rate
        self.seed = seed
        self.tz = settings.timezone
        self.rng = np.random.default_rng([seed, 2, time.time_ns()])
        self.stats = SimStats()
        self._carry: dict[str, float] = {}
        self._model: generator.ShopModel | None = None
        self._seq: tuple[dt.date, int] | None = None

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

    def tick(self, conn: psycopg.Connection, since: dt.datetime, now: dt.datetime) -> int:
        """Insert the orders due in ``[since, now)`` and advance statuses; one commit."""
        elapsed = (now - since).total_seconds()
        n = self._due("insert", self.rate * elapsed)
        model = self.model(conn)
        # orders of one tick stay within one local day, so their ids share a day sequence
        day_start, _ = generator.day_window(now.astimezone(ZoneInfo(self.tz)).date(), self.tz)
        start = max(since, day_start)
        inserted = 0
        if n and now > start:
            first = self._next_seq(conn, now)
            rows = as_new(
                generator.generate_orders(
                    model, start, now, n, self.rng, tz=self.tz, first_seq=first, as_of=now
                )
            )
            inserted = source_db.copy_in(conn, "orders", rows, skip_existing=True)
            assert self._seq is not None
            self._seq = (self._seq[0], first + n - 1)
            self.stats.defects += count_defects(rows)
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
        conn.commit()
        self.stats.inserted += inserted
        return inserted

    def run(
        self,
        stop: threading.Event,
        duration: float | None = None,
        every: float = 1.0,
        report_every: float = 10.0,
        on_report: Callable[[SimStats], None] = lambda stats: None,
        on_commit: Callable[[dt.datetime, int], None] = lambda at, n: None,
    ) -> SimStats:
        """Tick every ``every`` s until ``stop`` or ``duration``, reporting as it goes."""
        t0 = time.monotonic()
        last_report = t0
        with source_db.session(self.settings.dsn) as conn:
            self.model(conn)
            since = dt.datetime.now(dt.UTC)
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
