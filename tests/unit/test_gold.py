"""Gold aggregates over silver relations (no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest

from jobs.domain import gold, silver
from tests.orders_data import DAY, order, orders_table, with_metadata


def silver_of(rows: list[dict[str, Any]]) -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    return silver.clean(silver.classify(con.from_arrow(with_metadata(orders_table(rows)))))


ROWS = [
    order(
        1,
        category="Books",
        region="North",
        customer_id="C1",
        price=Decimal("10.00"),
        quantity=1,
        status="completed",
    ),
    order(
        2,
        category="Books",
        region="South",
        customer_id="C2",
        price=Decimal("-5.50"),
        quantity=2,
        status="cancelled",
    ),  # repaired price counts, any status counts
    order(
        3,
        category="Home",
        region="North",
        customer_id="C1",
        price=Decimal("3.33"),
        quantity=3,
        total=Decimal("1.00"),
    ),  # wrong source total: recomputed one counts
    order(4, category="Home", region="North", customer_id="C3", quantity=0),  # rejected
]


def table(rel: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    return rel.to_arrow_table().to_pylist()


def test_daily_summary():
    (row,) = table(gold.daily_summary(silver_of(ROWS), DAY))
    assert row == {
        "date": DAY,
        "total_orders": 3,
        "total_revenue": Decimal("10.00") + Decimal("11.00") + Decimal("9.99"),
        "total_quantity": 6,
        "avg_order_value": Decimal("10.33"),  # 30.99 / 3 rounded to the cent
        "unique_customers": 2,
    }


def test_category_performance_sorted_by_revenue():
    rows = table(gold.category_performance(silver_of(ROWS), DAY))
    assert rows == [
        {
            "date": DAY,
            "category": "Books",
            "order_count": 2,
            "revenue": Decimal("21.00"),
            "quantity_sold": 3,
        },
        {
            "date": DAY,
            "category": "Home",
            "order_count": 1,
            "revenue": Decimal("9.99"),
            "quantity_sold": 3,
        },
    ]


def test_regional_performance():
    rows = table(gold.regional_performance(silver_of(ROWS), DAY))
    assert rows == [
        {"date": DAY, "region": "North", "order_count": 2, "revenue": Decimal("19.99")},
        {"date": DAY, "region": "South", "order_count": 1, "revenue": Decimal("11.00")},
    ]


def test_empty_day_gives_zeros_and_no_groups():
    empty = silver_of([])
    (row,) = table(gold.daily_summary(empty, DAY))
    assert row == {
        "date": DAY,
        "total_orders": 0,
        "total_revenue": Decimal("0.00"),
        "total_quantity": 0,
        "avg_order_value": Decimal("0.00"),
        "unique_customers": 0,
    }
    assert table(gold.category_performance(empty, DAY)) == []
    assert table(gold.regional_performance(empty, DAY)) == []


def test_null_category_is_its_own_group():
    rows = table(gold.category_performance(silver_of([order(1, category=None), order(2)]), DAY))
    assert sorted(r["order_count"] for r in rows) == [1, 1]
    assert None in {r["category"] for r in rows}


@pytest.mark.parametrize("name", sorted(gold.GOLD_TABLES))
def test_aggregates_reusable_on_a_filtered_relation(name):
    # the dashboard job aggregates a subset of statuses with the same functions
    only_completed = silver_of(ROWS).filter("status = 'completed'")
    rows = table(gold.GOLD_TABLES[name](only_completed, DAY))
    assert sum(r.get("order_count", r.get("total_orders", 0)) for r in rows) == 2


NULLS = [
    order(1, category=None, region="North", customer_id=None),
    order(2, category="Books", region=None, price=Decimal("12.34"), quantity=7),
    order(3, category=None, region=None, customer_id="C9", quantity=1),
]


@pytest.mark.parametrize(
    "rows", [ROWS, [], NULLS, ROWS + NULLS], ids=["rows", "empty", "nulls", "all"]
)
def test_tables_from_slices_equal_the_functions(rows):
    """The gold step adds up the day's slices: the same rows, types and order."""
    day_silver = silver_of(rows)
    (customers,) = gold.unique_customers(day_silver).fetchone() or (0,)
    fast = gold.from_slices(gold.slices(day_silver), customers, DAY)
    assert set(fast) == set(gold.GOLD_TABLES)
    for name, aggregate in gold.GOLD_TABLES.items():
        want = aggregate(day_silver, DAY)
        assert fast[name].columns == want.columns and fast[name].types == want.types, name
        assert fast[name].fetchall() == want.fetchall(), name
