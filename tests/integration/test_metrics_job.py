"""The dashboard micro-batch on the real PostgreSQL, S3 and Redis, checked against SQL."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest

from jobs import dashboard_metrics
from jobs.adapters import source_db
from jobs.adapters.lake.layout import DASHBOARD_METRICS, DASHBOARD_ORDERS_TODAY
from jobs.bootstrap import lake_for
from jobs.domain import generator
from jobs.domain.dashboard import dump_update
from jobs.settings import Settings

pytestmark = pytest.mark.integration

TODAY = dt.date(2024, 6, 12)
NOW = dt.datetime(2024, 6, 12, 15, 30, tzinfo=dt.UTC)
# the dashboard's rules, restated in PostgreSQL's SQL: silver-clean, two statuses
COUNTED = """status IN ('completed', 'processing') AND customer_id IS NOT NULL
    AND trim(customer_id) <> '' AND quantity > 0 AND price IS NOT NULL"""


@pytest.fixture
def settings(live_settings: Settings) -> Settings:
    return live_settings


def load(settings: Settings, days: list[dt.date], per_day: int = 400) -> None:
    model = generator.build_model(7, 300, 80)
    with source_db.session(settings.dsn) as conn:
        for day in days:
            rows = generator.orders_for_day(model, 7, day, per_day, now=NOW)
            source_db.copy_in(conn, "orders", rows, skip_existing=False)
        conn.commit()


def run_job(settings: Settings) -> dashboard_metrics.MetricsRun:
    """One run of a new job, closed: its orders_today is in the lake on return."""
    job = dashboard_metrics.MetricsJob(settings)
    try:
        return job.run(now=NOW)
    finally:
        job.close()


def sql(settings: Settings, query: str, *args: object) -> list[tuple]:
    with source_db.session(settings.dsn) as conn:
        return conn.execute(query, args).fetchall()


def window(day: dt.date, until: dt.datetime | None = None) -> str:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    end = until or start + dt.timedelta(days=1)
    return f"order_date >= '{start.isoformat()}' AND order_date < '{end.isoformat()}'"


def test_metrics_match_sql_in_postgres(settings: Settings) -> None:
    load(settings, [TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1), TODAY])
    run = run_job(settings)
    m = dump_update(run.message)["metrics"]
    overall = m["overall_metrics"]

    (expected,) = sql(
        settings,
        f"""SELECT count(*), sum(abs(price) * quantity),
        count(DISTINCT customer_id) FROM orders WHERE {window(TODAY)} AND {COUNTED}""",
    )
    assert expected[0] > 100
    assert (overall["total_orders"], overall["unique_customers"]) == (expected[0], expected[2])
    assert Decimal(str(overall["total_revenue"])) == expected[1]

    yesterday = TODAY - dt.timedelta(days=1)
    cutoff = NOW - dt.timedelta(days=1)
    (prev,) = sql(
        settings,
        f"""SELECT count(*), sum(abs(price) * quantity) FROM orders
        WHERE {window(yesterday, cutoff)} AND {COUNTED}""",
    )
    assert overall["yesterday_total_orders"] == prev[0]
    assert Decimal(str(overall["yesterday_total_revenue"])) == prev[1]

    by_category = sql(
        settings,
        f"""SELECT category, count(*), sum(abs(price) * quantity),
        sum(quantity) FROM orders WHERE {window(TODAY)} AND {COUNTED}
        GROUP BY category ORDER BY 3 DESC, 1""",
    )
    assert [
        (r["category"], r["order_count"], Decimal(str(r["revenue"])), r["quantity_sold"])
        for r in m["category_stats"]
    ] == by_category
    by_region = sql(
        settings,
        f"""SELECT region, count(*), sum(abs(price) * quantity)
        FROM orders WHERE {window(TODAY)} AND {COUNTED} GROUP BY region ORDER BY 3 DESC, 1""",
    )
    assert [
        (r["region"], r["order_count"], Decimal(str(r["revenue"]))) for r in m["regional_stats"]
    ] == by_region
    by_hour = sql(
        settings,
        f"""SELECT extract(hour FROM order_date)::int, count(*),
        sum(abs(price) * quantity) FROM orders WHERE {window(TODAY)} AND {COUNTED}
        GROUP BY 1 ORDER BY 1""",
    )
    assert [
        (r["hour"], r["order_count"], Decimal(str(r["revenue"]))) for r in m["hourly_stats"]
    ] == by_hour
    top = sql(
        settings,
        f"""SELECT product_name, sum(abs(price) * quantity) FROM orders
        WHERE {window(TODAY)} AND {COUNTED} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
    )
    assert [(r["product_name"], Decimal(str(r["revenue"]))) for r in m["top_products"]] == top

    # the lake holds today's orders (every status) and the same five tables, one run id
    lake = lake_for(settings)
    (n_today,) = sql(settings, f"SELECT count(*) FROM orders WHERE {window(TODAY)}")
    today_rows = dashboard_metrics._read(lake, DASHBOARD_ORDERS_TODAY)
    assert today_rows.num_rows == run.orders == n_today[0]
    assert set(DASHBOARD_METRICS) == set(dashboard_metrics.DASHBOARD_METRICS)
    latest = dashboard_metrics.read_latest(lake)
    assert latest is not None and latest.run_id == run.run_id
    assert dump_update(latest)["metrics"] == m


def test_an_empty_day_gives_zeros(settings: Settings) -> None:
    load(settings, [TODAY - dt.timedelta(days=1)])
    run = run_job(settings)
    m = dump_update(run.message)["metrics"]
    assert run.orders == 0
    assert (m["overall_metrics"]["total_orders"], m["overall_metrics"]["total_revenue"]) == (0, 0)
    assert m["overall_metrics"]["yesterday_total_orders"] > 0
    assert m["top_products"] == m["category_stats"] == m["hourly_stats"] == []
    assert dashboard_metrics._read(lake_for(settings), DASHBOARD_ORDERS_TODAY).num_rows == 0


def test_a_day_of_only_cancelled_orders_counts_nothing(settings: Settings) -> None:
    load(settings, [TODAY])
    with source_db.session(settings.dsn) as conn:
        conn.execute("UPDATE orders SET status = 'cancelled'")
        conn.commit()
    run = run_job(settings)
    m = dump_update(run.message)["metrics"]
    assert run.orders > 100
    assert m["overall_metrics"]["total_orders"] == 0
    assert m["regional_stats"] == [] and m["top_products"] == []


def test_redis_down_still_writes_the_lake(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    load(settings, [TODAY])
    offline = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with caplog.at_level(logging.WARNING, logger="jobs.dashboard_metrics"):
        run = run_job(offline)
    assert run.subscribers is None and "Redis unreachable" in run.line()
    assert any("not announced" in r.getMessage() for r in caplog.records)
    latest = dashboard_metrics.read_latest(lake_for(offline))
    assert latest is not None and latest.run_id == run.run_id


# ---- incremental runs: the same numbers as a full recomputation ----
def figures(run: dashboard_metrics.MetricsRun) -> dict[str, object]:
    """What the dashboard shows of a run (its id aside)."""
    shown = dump_update(run.message)["metrics"]
    return {k: v for k, v in shown.items() if k != "run_id"}


def fresh(settings: Settings) -> dashboard_metrics.MetricsRun:
    """A full recomputation: a new job reads the whole day."""
    job = dashboard_metrics.MetricsJob(settings)
    try:
        run = job.run(now=NOW)
        assert job.today.full_reads == 1
        return run
    finally:
        job.close()


def change(settings: Settings, *statements: str) -> None:
    with source_db.session(settings.dsn) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def some_ids(settings: Settings, n: int, where: str = "true") -> list[str]:
    query = f"SELECT order_id FROM orders WHERE {window(TODAY)} AND {where} ORDER BY 1 LIMIT {n}"
    rows = sql(settings, query)
    return [r[0] for r in rows]


def quoted(ids: list[str]) -> str:
    return ", ".join(f"'{i}'" for i in ids)


def test_incremental_runs_equal_a_full_recomputation(settings: Settings) -> None:
    load(settings, [TODAY - dt.timedelta(days=1), TODAY])
    job = dashboard_metrics.MetricsJob(settings)
    try:
        first = job.run(now=NOW)
        assert figures(first) == figures(fresh(settings)) and job.today.full_reads == 1

        # updates to earlier orders of the day: a status, a price, a customer removed
        a, b, c = some_ids(settings, 3, "status IN ('completed', 'processing')")
        change(
            settings,
            f"UPDATE orders SET status = 'cancelled' WHERE order_id = '{a}'",
            f"UPDATE orders SET price = price * 3, updated_at = now() WHERE order_id = '{b}'",
            f"UPDATE orders SET customer_id = NULL WHERE order_id = '{c}'",  # now rejected
        )
        # late rows: ordered this morning, written now; and a new order
        late = f"""INSERT INTO orders (order_id, order_date, customer_id, product_id, category,
            product_name, price, quantity, total, status, payment_method, region)
            SELECT order_id || '-late', date_trunc('day', order_date) + interval '1 hour',
                   customer_id, product_id, category, product_name, price, quantity, total,
                   'completed', payment_method, region
            FROM orders WHERE order_id IN ({quoted(some_ids(settings, 10)[-4:])})"""
        change(settings, late)
        second = job.run(now=NOW)
        assert job.today.full_reads == 1  # read incrementally
        assert figures(second) == figures(fresh(settings)) != figures(first)
        assert second.orders == first.orders + 4

        # deletes, and an order moved to yesterday: read in full again, same figures
        d, e = some_ids(settings, 2, "status = 'completed'")
        change(
            settings,
            f"DELETE FROM orders WHERE order_id = '{d}'",
            f"UPDATE orders SET order_date = order_date - interval '1 day' WHERE order_id = '{e}'",
        )
        third = job.run(now=NOW)
        assert job.today.full_reads == 2 and third.orders == second.orders - 2
        assert figures(third) == figures(fresh(settings))

        # nothing changed: nothing read again, same figures
        fourth = job.run(now=NOW)
        assert job.today.full_reads == 2 and figures(fourth) == figures(third)
        # the lake's orders_today holds the source's rows of the day, as they are now
        job.flush()
        kept = dashboard_metrics._read(lake_for(settings), DASHBOARD_ORDERS_TODAY)
        now_rows = sql(
            settings, f"SELECT order_id, quantity, status FROM orders WHERE {window(TODAY)}"
        )
        assert sorted(
            zip(*kept.select(["order_id", "quantity", "status"]).to_pydict().values(), strict=True)
        ) == sorted(now_rows)
    finally:
        job.close()


def test_a_transaction_open_across_a_run_is_seen_by_the_next(settings: Settings) -> None:
    """A row written by a transaction that started before a read and committed after it is
    invisible to that read, and its xmin precedes the read: the next run still finds it."""
    load(settings, [TODAY])
    job = dashboard_metrics.MetricsJob(settings)
    oid, other = some_ids(settings, 2, "status = 'completed'")
    try:
        job.run(now=NOW)
        with source_db.session(settings.dsn) as slow:
            slow.execute(f"UPDATE orders SET quantity = quantity + 7 WHERE order_id = '{oid}'")
            # a later transaction commits first: the snapshot's newest id is now past the
            # slow one's, so only the oldest running id (xmin) is a safe horizon
            change(settings, f"UPDATE orders SET quantity = 3 WHERE order_id = '{other}'")
            # committed after the next run's snapshot: that run cannot see it yet
            during = job.run(now=NOW)
            slow.commit()
        after = job.run(now=NOW)
        assert job.today.full_reads == 1
        assert figures(after) == figures(fresh(settings)) != figures(during)
    finally:
        job.close()


def test_a_lost_database_connection_is_replaced(settings: Settings) -> None:
    load(settings, [TODAY])
    job = dashboard_metrics.MetricsJob(settings)
    try:
        job.run(now=NOW)
        job.run(now=NOW)  # the incremental read keeps its connection open
        change(
            settings,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        (oid,) = some_ids(settings, 1, "status = 'completed'")
        change(settings, f"UPDATE orders SET quantity = quantity + 2 WHERE order_id = '{oid}'")
        after = job.run(now=NOW)
        assert job.today.full_reads == 1 and figures(after) == figures(fresh(settings))
    finally:
        job.close()
