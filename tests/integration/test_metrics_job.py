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


def sql(settings: Settings, query: str, *args: object) -> list[tuple]:
    with source_db.session(settings.dsn) as conn:
        return conn.execute(query, args).fetchall()


def window(day: dt.date, until: dt.datetime | None = None) -> str:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    end = until or start + dt.timedelta(days=1)
    return f"order_date >= '{start.isoformat()}' AND order_date < '{end.isoformat()}'"


def test_metrics_match_sql_in_postgres(settings: Settings) -> None:
    load(settings, [TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1), TODAY])
    run = dashboard_metrics.MetricsJob(settings).run(now=NOW)
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
    run = dashboard_metrics.MetricsJob(settings).run(now=NOW)
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
    run = dashboard_metrics.MetricsJob(settings).run(now=NOW)
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
        run = dashboard_metrics.MetricsJob(offline).run(now=NOW)
    assert run.subscribers is None and "Redis unreachable" in run.line()
    assert any("not announced" in r.getMessage() for r in caplog.records)
    latest = dashboard_metrics.read_latest(lake_for(offline))
    assert latest is not None and latest.run_id == run.run_id
