"""read_orders_for_day against the real PostgreSQL: exactly the day's rows, exact types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from jobs import seed as seed_job
from jobs.adapters import source_db
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings

pytestmark = pytest.mark.integration

DAY = dt.date(2024, 5, 2)
ROUTES = [
    "copy-csv",
    pytest.param(
        "duckdb",
        marks=pytest.mark.skipif(
            source_db.postgres_extension_path() is None,
            reason="duckdb-extension-postgres-scanner not installed",
        ),
    ),
]

INSERT = (
    "INSERT INTO orders (order_id, order_date, customer_id, product_id, category, product_name,"
    " price, quantity, total, status, payment_method, region, created_at, updated_at)"
    " VALUES (%s, %s, %s, 'P1', 'Books', %s, %s, %s, %s, %s, 'paypal', 'Europe', %s, %s)"
)


@pytest.fixture
def seeded(pg_settings: Settings) -> Settings:
    seed_job.seed(
        pg_settings,
        days=3,
        orders_per_day=150,
        end_date=dt.date(2024, 5, 3),
        n_customers=100,
        n_products=50,
    )
    return pg_settings


def sql_rows(dsn: str, where: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    cols = ", ".join(source_db.ORDER_COLUMNS)
    with source_db.session(dsn) as conn:
        return conn.execute(
            f"SELECT {cols} FROM orders WHERE {where} ORDER BY order_id", params
        ).fetchall()


def as_rows(table: pa.Table) -> list[tuple[object, ...]]:
    table = table.sort_by("order_id")
    return [tuple(r.values()) for r in table.to_pylist()]


@pytest.mark.parametrize("route", ROUTES)
def test_exactly_the_utc_day_with_exact_values(seeded: Settings, route: str) -> None:
    table = source_db.read_orders_for_day(seeded.dsn, DAY, "UTC", route=route)
    assert table.schema.equals(source_db.ORDERS_ARROW_SCHEMA)
    expected = sql_rows(seeded.dsn, "(order_date AT TIME ZONE 'UTC')::date = %s", (DAY,))
    assert table.num_rows == len(expected) > 100
    got = as_rows(table)
    assert got == expected  # Decimal prices and totals, aware datetimes, '' and NULL kept apart
    assert all(isinstance(r[6], Decimal) for r in got)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_day_boundary_in_a_local_time_zone(seeded: Settings, route: str, tz: str) -> None:
    table = source_db.read_orders_for_day(seeded.dsn, DAY, tz, route=route)
    expected = sql_rows(seeded.dsn, "(order_date AT TIME ZONE %s)::date = %s", (tz, DAY))
    assert as_rows(table) == expected
    utc_ids = set(
        source_db.read_orders_for_day(seeded.dsn, DAY, "UTC", route=route)
        .column("order_id")
        .to_pylist()
    )
    assert set(table.column("order_id").to_pylist()) != utc_ids  # the window really moved


@pytest.mark.parametrize("route", ROUTES)
def test_edges_and_awkward_values(pg_settings: Settings, route: str) -> None:
    tz = "America/New_York"
    start, end = (
        dt.datetime(2024, 3, 10, tzinfo=dt.UTC) + dt.timedelta(hours=5),
        dt.datetime(2024, 3, 11, 4, tzinfo=dt.UTC),
    )  # a 23-hour DST day
    us = dt.timedelta(microseconds=1)
    rows = [
        (
            "A-start",
            start,
            "C1",
            'Tab\tquote" comma, new\nline ünïcode',
            Decimal("1234567.89"),
            3,
            Decimal("-0.01"),
            "",
        ),
        ("B-last", end - us, None, "", Decimal("-19.99"), 0, Decimal("0.00"), None),
        ("C-before", start - us, "C2", "x", Decimal("1.00"), 1, Decimal("1.00"), "completed"),
        ("D-next", end, "C3", "y", Decimal("2.00"), 1, Decimal("2.00"), "pending"),
    ]
    with source_db.session(pg_settings.dsn) as conn:
        source_db.ensure_schema(conn)
        for oid, ts, cust, name, price, qty, total, status in rows:
            conn.execute(INSERT, (oid, ts, cust, name, price, qty, total, status, ts, ts))
        conn.commit()
    table = source_db.read_orders_for_day(pg_settings.dsn, dt.date(2024, 3, 10), tz, route=route)
    got = {r["order_id"]: r for r in table.to_pylist()}
    assert set(got) == {"A-start", "B-last"}
    a, b = got["A-start"], got["B-last"]
    assert a["product_name"] == rows[0][3] and a["status"] == "" and b["status"] is None
    assert b["customer_id"] is None and b["product_name"] == ""
    assert (a["price"], a["total"], b["price"]) == (
        Decimal("1234567.89"),
        Decimal("-0.01"),
        Decimal("-19.99"),
    )
    assert a["order_date"] == start and b["updated_at"] == end - us
    assert table.schema.equals(source_db.ORDERS_ARROW_SCHEMA)


@pytest.mark.parametrize("route", ROUTES)
def test_a_day_without_orders_is_an_empty_table(seeded: Settings, route: str) -> None:
    table = source_db.read_orders_for_day(seeded.dsn, dt.date(2023, 1, 1), route=route)
    assert table.num_rows == 0 and table.schema.equals(source_db.ORDERS_ARROW_SCHEMA)


@pytest.mark.parametrize("route", ROUTES)
def test_unreachable_database(route: str) -> None:
    dsn = "postgresql://shoplake:hunter2@127.0.0.1:1/shoplake?connect_timeout=2"
    with pytest.raises(ServiceUnavailable) as err:
        source_db.read_orders_for_day(dsn, DAY, route=route)
    message = str(err.value)
    assert "127.0.0.1:1" in message and "hunter2" not in message and "\n" not in message


def test_missing_table_is_a_clear_error(pg_settings: Settings) -> None:
    with pytest.raises(ServiceUnavailable, match="orders"):
        source_db.read_orders_for_day(pg_settings.dsn, DAY, route="copy-csv")


@pytest.mark.parametrize("route", ROUTES)
def test_every_row_lands_on_a_day_even_without_a_usable_order_date(
    pg_settings: Settings, route: str
) -> None:
    """NULL/infinite order dates land on the day of their last change; values Arrow cannot
    hold (infinite timestamps, numeric NaN) come through as NULL instead of failing the day."""
    day = dt.date(2024, 6, 1)
    noon = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
    rows = [
        # order_id, order_date, price, total, created_at, updated_at
        ("N-null-date", None, "5.00", "5.00", noon, noon),
        ("N-inf-date", "infinity", "5.00", "5.00", noon, noon),
        ("N-neg-inf-date", "-infinity", "5.00", "5.00", None, noon),
        ("N-created-only", None, "5.00", "5.00", noon, None),
        ("N-inf-updated", noon, "5.00", "5.00", noon, "infinity"),
        ("N-nan-price", noon, "NaN", "NaN", noon, noon),
        ("N-other-day", None, "5.00", "5.00", noon, noon + dt.timedelta(days=1)),
    ]
    with source_db.session(pg_settings.dsn) as conn:
        source_db.ensure_schema(conn)
        for oid, when, price, total, created, updated in rows:
            conn.execute(
                INSERT, (oid, when, "C1", "p", price, 1, total, "completed", created, updated)
            )
        conn.commit()
    table = source_db.read_orders_for_day(pg_settings.dsn, day, "UTC", route=route)
    got = {r["order_id"]: r for r in table.to_pylist()}
    assert set(got) == {oid for oid, *_ in rows} - {"N-other-day"}
    assert got["N-inf-date"]["order_date"] is None and got["N-null-date"]["order_date"] is None
    assert got["N-inf-updated"]["updated_at"] is None
    assert got["N-nan-price"]["price"] is None and got["N-nan-price"]["total"] is None
    later = source_db.read_orders_for_day(pg_settings.dsn, day + dt.timedelta(days=1), "UTC")
    assert later.column("order_id").to_pylist() == ["N-other-day"]
