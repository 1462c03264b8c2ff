"""Gold aggregates as pure DuckDB SQL over a relation of silver rows (no I/O).

Every function takes the rows to aggregate and the day they belong to, so the
dashboard job can reuse them on a filtered relation (e.g. only some statuses).
Revenue is the exact DECIMAL sum of the repaired ``total``; an empty input
gives one ``daily_summary`` row of zeros and no category/region rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from duckdb import DuckDBPyRelation

MONEY = "DECIMAL(38,2)"


def _day(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def daily_summary(silver: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """One row: orders, revenue, quantity, average order value and distinct customers."""
    return silver.query(
        "silver",
        f"""
        SELECT {_day(day)} AS date,
               count(*) AS total_orders,
               CAST(coalesce(sum(total), 0) AS {MONEY}) AS total_revenue,
               CAST(coalesce(sum(quantity), 0) AS BIGINT) AS total_quantity,
               -- a presentation figure: rounded to the cent, 0 on a day without orders
               CAST(CASE WHEN count(*) = 0 THEN 0
                         ELSE round(sum(total) / count(*), 2) END AS {MONEY}) AS avg_order_value,
               count(DISTINCT customer_id) AS unique_customers
        FROM silver
        """,
    )


def category_performance(silver: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """Per category: orders, revenue and quantity sold, by revenue descending."""
    return silver.query(
        "silver",
        f"""
        SELECT {_day(day)} AS date, category,
               count(*) AS order_count,
               CAST(sum(total) AS {MONEY}) AS revenue,
               CAST(sum(quantity) AS BIGINT) AS quantity_sold
        FROM silver GROUP BY category
        ORDER BY revenue DESC, category NULLS LAST
        """,
    )


def regional_performance(silver: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """Per region: orders and revenue, by revenue descending."""
    return silver.query(
        "silver",
        f"""
        SELECT {_day(day)} AS date, region,
               count(*) AS order_count,
               CAST(sum(total) AS {MONEY}) AS revenue
        FROM silver GROUP BY region
        ORDER BY revenue DESC, region NULLS LAST
        """,
    )


GOLD_TABLES: dict[str, Callable[[DuckDBPyRelation, dt.date], DuckDBPyRelation]] = {
    "daily_summary": daily_summary,
    "category_performance": category_performance,
    "regional_performance": regional_performance,
}


# ---- the same three tables from one pass over the day (the medallion's gold step) ----
def slices(silver: DuckDBPyRelation) -> DuckDBPyRelation:
    """Orders, revenue and quantity per category and region: a few rows (at most categories
    x regions) that every gold table adds up, from one scan of the day's silver instead of
    one scan per table."""
    return silver.query(
        "silver",
        """
        SELECT category, region, count(*) AS orders, sum(total) AS revenue,
               sum(quantity) AS quantity
        FROM silver GROUP BY category, region
        """,
    )


def unique_customers(silver: DuckDBPyRelation) -> DuckDBPyRelation:
    """One row: the distinct customers of the day (the figure ``slices`` cannot add up)."""
    return silver.query("silver", "SELECT count(DISTINCT customer_id) AS n FROM silver")


def from_slices(
    day_slices: DuckDBPyRelation, customers: int, day: dt.date
) -> dict[str, DuckDBPyRelation]:
    """``GOLD_TABLES`` of a day from its ``slices`` and ``unique_customers``: the same rows,
    types and order as those functions give of the day's silver (tests/unit/test_gold.py)."""
    orders = "CAST(sum(orders) AS BIGINT)"
    return {
        "daily_summary": day_slices.query(
            "slices",
            f"""
            SELECT {_day(day)} AS date,
                   coalesce({orders}, 0) AS total_orders,
                   CAST(coalesce(sum(revenue), 0) AS {MONEY}) AS total_revenue,
                   CAST(coalesce(sum(quantity), 0) AS BIGINT) AS total_quantity,
                   CAST(CASE WHEN coalesce({orders}, 0) = 0 THEN 0
                             ELSE round(sum(revenue) / {orders}, 2) END AS {MONEY})
                     AS avg_order_value,
                   CAST({int(customers)} AS BIGINT) AS unique_customers
            FROM slices
            """,
        ),
        "category_performance": day_slices.query(
            "slices",
            f"""
            SELECT {_day(day)} AS date, category,
                   {orders} AS order_count,
                   CAST(sum(revenue) AS {MONEY}) AS revenue,
                   CAST(sum(quantity) AS BIGINT) AS quantity_sold
            FROM slices GROUP BY category
            ORDER BY revenue DESC, category NULLS LAST
            """,
        ),
        "regional_performance": day_slices.query(
            "slices",
            f"""
            SELECT {_day(day)} AS date, region,
                   {orders} AS order_count,
                   CAST(sum(revenue) AS {MONEY}) AS revenue
            FROM slices GROUP BY region
            ORDER BY revenue DESC, region NULLS LAST
            """,
        ),
    }
