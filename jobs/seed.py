"""Use case: create the source schema and load generated customers, products and orders.

Re-seeding without ``reset`` skips rows whose keys already exist (ON CONFLICT DO
NOTHING) rather than clearing the window: generation is deterministic per day, so the
same seed re-creates the same ids, the existing rows (and any live updates made to them
since) stay as they are, and only missing rows, such as today's newer orders, are added.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import psycopg

from jobs.adapters import source_db
from jobs.domain import generator
from jobs.progress import ProgressBar
from jobs.settings import Settings

DEFAULT_PRODUCTS = 500
# the default history: enough days and orders that charts have shape, loaded in seconds
DEFAULT_DAYS = 90
DEFAULT_ORDERS_PER_DAY = 800
# from this many planned orders into an empty table, load first and index afterwards
BULK_ROWS = 200_000


@dataclass(frozen=True)
class SeedResult:
    """What a seed did: rows added per table, the window, and how long it took."""

    customers: int
    products: int
    orders: int
    first_day: dt.date
    last_day: dt.date
    seconds: float
    skipped: bool = False

    def line(self) -> str:
        """One human line for the CLI."""
        if self.skipped:
            return "seed skipped: orders already has rows (--if-empty)"
        days = (self.last_day - self.first_day).days + 1
        rate = self.orders / self.seconds if self.seconds > 0 else 0.0
        return (
            f"seeded {self.orders:,} orders over {days} day(s) "
            f"({self.first_day}..{self.last_day}), {self.customers:,} customers, "
            f"{self.products:,} products added in {self.seconds:.1f}s ({rate:,.0f} orders/s)"
        )


def seed(
    settings: Settings,
    *,
    days: int = DEFAULT_DAYS,
    orders_per_day: int = DEFAULT_ORDERS_PER_DAY,
    seed: int = 42,
    end_date: dt.date | None = None,
    n_customers: int | None = None,
    n_products: int | None = None,
    reset: bool = False,
    if_empty: bool = False,
    progress: bool = False,
) -> SeedResult:
    """Create the schema and load ``days`` days of orders ending ``end_date`` (default today).

    Days are local days of ``settings.timezone``; nothing is generated after now.
    """
    if days < 1 or orders_per_day < 0:
        raise ValueError("days must be >= 1 and orders_per_day >= 0")
    # checked before the schema is created: a refused seed writes nothing
    if n_customers is not None and n_customers < 1:
        raise ValueError("n_customers must be >= 1")
    if n_products is not None and n_products < len(generator.CATEGORIES):
        raise ValueError(f"n_products must be >= {len(generator.CATEGORIES)} (one per category)")
    started = time.perf_counter()
    tz = settings.timezone
    now = dt.datetime.now(dt.UTC)
    last = end_date or now.astimezone(ZoneInfo(tz)).date()
    first = last - dt.timedelta(days=days - 1)
    with source_db.session(settings.dsn) as conn:
        source_db.ensure_schema(conn)
        if if_empty and source_db.nonempty(conn)["orders"]:
            return SeedResult(0, 0, 0, first, last, time.perf_counter() - started, skipped=True)
        if reset:
            source_db.truncate_all(conn)
        model = generator.build_model(
            seed,
            n_customers or generator.default_customer_count(days * orders_per_day),
            n_products or DEFAULT_PRODUCTS,
            reference=first,
        )
        # an empty table takes the plain COPY; otherwise existing keys are skipped
        existing = source_db.nonempty(conn)
        added_c = source_db.copy_in(
            conn, "customers", model.customers, skip_existing=existing["customers"]
        )
        added_p = source_db.copy_in(
            conn, "products", model.products, skip_existing=existing["products"]
        )
        conn.commit()
        # a big load into an empty table builds its indexes once, at the end
        bulk = not existing["orders"] and days * orders_per_day >= BULK_ROWS
        added_o = 0
        with ProgressBar(progress, days, "seeding orders") as bar, _maybe(bulk, conn):
            for day, rows in _days_ahead(model, seed, first, days, orders_per_day, tz, now):
                added_o += source_db.copy_in(
                    conn, "orders", rows, skip_existing=existing["orders"], freeze=bulk
                )
                if not bulk:
                    conn.commit()  # one transaction per day: an interrupted seed keeps whole days
                note = ", building indexes" if bulk and day == last else ""
                bar.advance(f"seeding orders {day} ({added_o:,} rows{note})")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE orders")  # fresh statistics for the extract's day ranges
    return SeedResult(added_c, added_p, added_o, first, last, time.perf_counter() - started)


@contextmanager
def _maybe(bulk: bool, conn: psycopg.Connection) -> Iterator[None]:
    if not bulk:
        yield
        return
    with source_db.orders_bulk_mode(conn):
        yield


def _days_ahead(
    model: generator.ShopModel,
    seed: int,
    first: dt.date,
    days: int,
    orders_per_day: int,
    tz: str,
    now: dt.datetime,
) -> Iterator[tuple[dt.date, source_db.EncodedRows]]:
    """Each day's orders as CSV, the next day generated in a thread while this one loads."""

    def make(i: int) -> source_db.EncodedRows:
        day = first + dt.timedelta(days=i)
        table = generator.orders_for_day(model, seed, day, orders_per_day, tz=tz, now=now)
        return source_db.encode_csv(table)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-gen") as pool:
        pending = pool.submit(make, 0)
        for i in range(days):
            table = pending.result()
            if i + 1 < days:
                pending = pool.submit(make, i + 1)
            yield first + dt.timedelta(days=i), table
