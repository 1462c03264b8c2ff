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
