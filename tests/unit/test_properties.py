"""Hypothesis properties of silver + gold over generated bronze with nulls and extremes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.domain import gold, silver
from tests.orders_data import DAY, orders_table, with_metadata

MAX_MONEY = Decimal("9999999999.99")  # numeric(12,2)
money = st.one_of(
    st.none(),
    st.decimals(
        min_value=-MAX_MONEY, max_value=MAX_MONEY, places=2, allow_nan=False, allow_infinity=False
    ),
    st.sampled_from([Decimal("0.00"), Decimal("-0.01"), Decimal("1000000000.00")]),
)
text = st.one_of(
    st.none(),
    st.just(""),
    st.just("  "),
    st.text(max_size=8),
    st.sampled_from(["Électronique", "家居", "😀", "North"]),
)
stamp = st.one_of(
    st.none(),
    st.datetimes(
        min_value=dt.datetime(2024, 3, 5),
        max_value=dt.datetime(2024, 3, 6),
        timezones=st.just(dt.UTC),
    ),
)
order_row = st.fixed_dictionaries(
    {
        # a small pool of ids, so duplicates are common
        "order_id": st.one_of(st.none(), st.just(""), st.sampled_from([f"O{i}" for i in range(6)])),
        "order_date": st.just(dt.datetime(2024, 3, 5, 12, tzinfo=dt.UTC)),
        "customer_id": text,
        "product_id": text,
        "category": text,
        "product_name": text,
        "price": money,
        "quantity": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-2, 5)),
        "total": money,
        "status": text,
        "payment_method": text,
        "region": text,
        "created_at": stamp,
        "updated_at": stamp,
    }
)
tables = st.lists(order_row, max_size=25)
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def process(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    con = duckdb.connect()
    classified = silver.classify(con.from_arrow(with_metadata(orders_table(rows))))
    clean = silver.clean(classified)
    out = {"silver": clean, "rejected": silver.rejected(classified)}
    out.update({name: fn(clean, DAY) for name, fn in gold.GOLD_TABLES.items()})
    return {k: v.to_arrow_table().to_pylist() for k, v in out.items()}


@SETTINGS
@given(tables)
def test_bronze_is_silver_plus_rejected(rows):
    out = process(rows)
    assert len(out["silver"]) + len(out["rejected"]) == len(rows)
    ids = Counter(r["order_id"] for r in rows)
    assert Counter(r["order_id"] for r in out["silver"] + out["rejected"]) == ids
    assert all(r["_reject_reason"] in silver.REJECT_REASONS for r in out["rejected"])


@SETTINGS
@given(tables)
def test_silver_rows_obey_the_rules(rows):
    clean = process(rows)["silver"]
    assert len({r["order_id"] for r in clean}) == len(clean)
    for r in clean:
        assert r["order_id"].strip() and r["customer_id"].strip() and r["status"].strip()
        assert r["quantity"] > 0 and r["price"] >= 0
        assert r["total"] == r["price"] * r["quantity"]


@SETTINGS
@given(tables)
def test_revenue_is_sum_of_repaired_price_times_quantity(rows):
    out = process(rows)
    expected = sum((abs(r["price"]) * r["quantity"] for r in out["silver"]), Decimal(0))
    (daily,) = out["daily_summary"]
    assert daily["total_revenue"] == expected
    assert sum((r["revenue"] for r in out["category_performance"]), Decimal(0)) == expected
    assert sum((r["revenue"] for r in out["regional_performance"]), Decimal(0)) == expected
    assert daily["total_orders"] == len(out["silver"])
    assert sum(r["order_count"] for r in out["category_performance"]) == len(out["silver"])


@SETTINGS
@given(tables, st.randoms(use_true_random=False))
def test_same_input_same_output_whatever_the_row_order(rows, rnd):
    first = process(rows)
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert process(rows) == first
    assert process(shuffled) == first
