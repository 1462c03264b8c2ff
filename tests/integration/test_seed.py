"""Seeding the real PostgreSQL: schema, counts, idempotent re-seed, --if-empty, --reset."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs import seed as seed_job
from jobs.adapters import source_db
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from tests.support.source_counts import row_counts

pytestmark = pytest.mark.integration

END = dt.date(2024, 5, 3)


def counts(settings: Settings) -> dict[str, int]:
    with source_db.session(settings.dsn) as conn:
        return row_counts(conn)


def test_seed_loads_what_it_reports(pg_settings: Settings) -> None:
    result = seed_job.seed(
        pg_settings, days=3, orders_per_day=120, end_date=END, n_customers=200, n_products=60
    )
    assert (result.customers, result.products) == (200, 60)
    assert result.orders > 250 and not result.skipped
    assert counts(pg_settings) == {"customers": 200, "products": 60, "orders": result.orders}
    assert f"{result.orders:,} orders" in result.line()
    with source_db.session(pg_settings.dsn) as conn:
        first, last = conn.execute("SELECT min(order_date), max(order_date) FROM orders").fetchone()  # type: ignore[misc]
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")
        }
        fks = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'").fetchone()
    assert first >= dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert last < dt.datetime(2024, 5, 4, tzinfo=dt.UTC)
    assert set(source_db.ORDER_INDEXES) | {"orders_pkey"} <= indexes
    assert fks == (0,)


def test_reseed_same_window_adds_nothing_and_keeps_edits(pg_settings: Settings) -> None:
    args = dict(days=2, orders_per_day=80, end_date=END, n_customers=100, n_products=40)
    first = seed_job.seed(pg_settings, **args)  # type: ignore[arg-type]
    with source_db.session(pg_settings.dsn) as conn:
        conn.execute(
            "UPDATE orders SET status = 'edited' WHERE order_id = "
            "(SELECT min(order_id) FROM orders)"
        )
        conn.commit()
    again = seed_job.seed(pg_settings, **args)  # type: ignore[arg-type]
    assert (again.customers, again.products, again.orders) == (0, 0, 0)
    assert counts(pg_settings)["orders"] == first.orders
    with source_db.session(pg_settings.dsn) as conn:
        edited = conn.execute("SELECT count(*) FROM orders WHERE status = 'edited'").fetchone()
    assert edited == (1,)
    # a wider window adds only the missing day
    wider = seed_job.seed(pg_settings, **{**args, "days": 3})  # type: ignore[arg-type]
    assert wider.orders > 0
    assert counts(pg_settings)["orders"] == first.orders + wider.orders


def test_if_empty_skips_a_seeded_database(pg_settings: Settings) -> None:
    seed_job.seed(pg_settings, days=1, orders_per_day=50, end_date=END, n_customers=50)
    before = counts(pg_settings)
    skipped = seed_job.seed(pg_settings, days=5, orders_per_day=50, end_date=END, if_empty=True)
    assert skipped.skipped and "skipped" in skipped.line()
    assert counts(pg_settings) == before


def test_reset_replaces_everything(pg_settings: Settings) -> None:
    seed_job.seed(pg_settings, days=2, orders_per_day=60, end_date=END, n_customers=80, seed=1)
    fresh = seed_job.seed(
        pg_settings,
        days=1,
        orders_per_day=60,
        end_date=END,
        n_customers=30,
        n_products=20,
        seed=2,
        reset=True,
    )
    assert counts(pg_settings) == {"customers": 30, "products": 20, "orders": fresh.orders}


def test_bulk_path_builds_indexes_and_matches_the_row_path(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seed_job, "BULK_ROWS", 1)  # force the load-then-index path
    result = seed_job.seed(
        pg_settings, days=2, orders_per_day=100, end_date=END, n_customers=60, n_products=30
    )
    with source_db.session(pg_settings.dsn) as conn:
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'")
        }
        n = conn.execute("SELECT count(DISTINCT order_id) FROM orders").fetchone()
    assert set(source_db.ORDER_INDEXES) | {"orders_pkey"} <= indexes
    assert n == (result.orders,)
    # the ids are the generator's, so a row-by-row re-seed finds them all
    monkeypatch.setattr(seed_job, "BULK_ROWS", 10**12)
    again = seed_job.seed(
        pg_settings, days=2, orders_per_day=100, end_date=END, n_customers=60, n_products=30
    )
    assert again.orders == 0


def test_today_has_no_future_orders(pg_settings: Settings) -> None:
    seed_job.seed(pg_settings, days=2, orders_per_day=200, n_customers=50)
    with source_db.session(pg_settings.dsn) as conn:
        row = conn.execute(
            "SELECT max(order_date) <= now(), max(updated_at) <= now() FROM orders"
        ).fetchone()
    assert row == (True, True)


def test_unreachable_database_is_one_clean_line() -> None:
    settings = Settings(
        _env_file=None,
        source_dsn=(  # type: ignore[call-arg]
            "postgresql://shoplake:hunter2@127.0.0.1:1/shoplake?connect_timeout=2"
        ),
    )
    with pytest.raises(ServiceUnavailable) as err:
        seed_job.seed(settings, days=1)
    message = str(err.value)
    assert "127.0.0.1:1" in message and "hunter2" not in message and "\n" not in message
