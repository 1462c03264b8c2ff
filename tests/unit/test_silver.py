"""Every silver rule, on in-memory bronze tables (no I/O)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from jobs.domain import silver
from tests.orders_data import NOON, order, orders_table, with_metadata


def run_silver(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clean and rejected rows of a bronze table built from ``rows``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    classified = silver.classify(con.from_arrow(with_metadata(orders_table(rows))))
    return (
        silver.clean(classified).to_arrow_table().to_pylist(),
        silver.rejected(classified).to_arrow_table().to_pylist(),
    )


def reasons_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["_reject_reason"] for r in run_silver(rows)[1]]


def test_valid_row_passes_unchanged_with_false_flags():
    clean, rejected = run_silver([order(1)])
    assert rejected == []
    (row,) = clean
    assert row["order_id"] == "ORD-000001"
    assert row["price"] == Decimal("10.00") and row["total"] == Decimal("20.00")
    assert row["_price_repaired"] is False and row["_total_mismatch"] is False
    assert row["_run_id"] == "test-run"  # bronze metadata travels along


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_order_id_rejected(value):
    assert reasons_of([order(1, order_id=value)]) == ["missing_order_id"]


@pytest.mark.parametrize("value", [None, "", " "])
def test_missing_customer_id_rejected(value):
    assert reasons_of([order(1, customer_id=value)]) == ["missing_customer_id"]


@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_or_empty_status_rejected(value):
    assert reasons_of([order(1, status=value)]) == ["missing_status"]


def test_missing_order_date_rejected():
    """An order without a usable date (NULL, or infinite in the source) lands in bronze for the
    day of its last change; silver quarantines it rather than guessing its date."""
    assert reasons_of([order(1, order_date=None)]) == ["missing_order_date"]


@pytest.mark.parametrize("value", [0, -1, -2_147_483_648, None])
def test_non_positive_or_missing_quantity_rejected(value):
    assert reasons_of([order(1, quantity=value, total=Decimal("0"))]) == ["invalid_quantity"]


def test_null_price_rejected_not_crashing():
    assert reasons_of([order(1, price=None, total=None)]) == ["missing_price"]


def test_duplicate_keeps_latest_updated_at():
    older = order(1, status="processing", updated_at=NOON)
    newer = order(1, status="completed", updated_at=NOON + dt.timedelta(hours=1))
    clean, rejected = run_silver([newer, older])
    assert [r["status"] for r in clean] == ["completed"]
    assert [(r["status"], r["_reject_reason"]) for r in rejected] == [
        ("processing", "duplicate_order_id")
    ]


def test_duplicate_with_null_updated_at_loses():
    clean, rejected = run_silver([order(1, updated_at=None, status="a"), order(1, status="b")])
    assert [r["status"] for r in clean] == ["b"]
    assert [r["status"] for r in rejected] == ["a"]


def test_duplicate_tie_is_independent_of_row_order():
    a, b = order(1, status="alpha"), order(1, status="beta")  # same updated_at
    first, second = run_silver([a, b]), run_silver([b, a])
    assert first == second
    assert len(first[0]) == 1 and len(first[1]) == 1


def test_latest_version_invalid_quarantines_the_order():
    older = order(1, updated_at=NOON)
    newer = order(1, quantity=0, updated_at=NOON + dt.timedelta(minutes=5))
    clean, rejected = run_silver([older, newer])
    assert clean == []
    assert sorted(r["_reject_reason"] for r in rejected) == [
        "duplicate_order_id",
        "invalid_quantity",
    ]


def test_negative_price_repaired_and_flagged():
    (row,), _ = run_silver([order(1, price=Decimal("-12.50"), quantity=3, total=Decimal("37.50"))])
    assert row["price"] == Decimal("12.50")
    assert row["total"] == Decimal("37.50")
    assert row["_price_repaired"] is True
    assert row["_total_mismatch"] is False


@pytest.mark.parametrize(
    ("source_total", "mismatch"),
    [
        (Decimal("20.00"), False),
        (Decimal("20.01"), False),
        (Decimal("19.99"), False),
        (Decimal("20.02"), True),
        (Decimal("0.00"), True),
        (None, True),
    ],
)
def test_total_recomputed_and_mismatch_flagged_above_one_cent(source_total, mismatch):
    (row,), _ = run_silver([order(1, price=Decimal("10.00"), quantity=2, total=source_total)])
    assert row["total"] == Decimal("20.00")
    assert row["_total_mismatch"] is mismatch


def test_several_reasons_first_by_priority_all_listed():
    (row,) = run_silver([order(1, customer_id=None, quantity=0, status="")])[1]
    assert row["_reject_reason"] == "missing_customer_id"
    assert row["_reject_reasons"] == ["missing_customer_id", "missing_status", "invalid_quantity"]


def test_rejected_rows_keep_source_values():
    (row,) = run_silver([order(1, price=Decimal("-3.00"), quantity=0, total=Decimal("5.00"))])[1]
    assert row["price"] == Decimal("-3.00") and row["total"] == Decimal("5.00")
    assert row["quantity"] == 0


def test_huge_values_do_not_overflow():
    price = Decimal("9999999999.99")  # the largest numeric(12,2)
    (row,), _ = run_silver([order(1, price=price, quantity=2_147_483_647, total=Decimal("1"))])
    assert row["total"] == price * 2_147_483_647


def test_empty_bronze_gives_empty_outputs_with_schema():
    con = duckdb.connect()
    classified = silver.classify(con.from_arrow(with_metadata(orders_table([]))))
    clean, rejected = silver.clean(classified), silver.rejected(classified)
    assert clean.to_arrow_table().num_rows == 0 and rejected.to_arrow_table().num_rows == 0
    assert {"_price_repaired", "_total_mismatch", "price", "total"} <= set(clean.columns)
    assert {"_reject_reason", "_reject_reasons"} <= set(rejected.columns)
    schema = clean.to_arrow_table().schema
    assert schema.field("total").type == pa.decimal128(22, 2)  # exact money, wide enough


def test_reject_reasons_are_the_documented_ones():
    assert silver.REJECT_REASONS == (
        "missing_order_id",
        "missing_customer_id",
        "missing_status",
        "missing_order_date",
        "invalid_quantity",
        "missing_price",
        "duplicate_order_id",
    )


def test_missing_text_is_exactly_what_trim_empties():
    """The cheap ``_missing`` check agrees with ``trim(x) = ''`` on every BMP character, alone,
    doubled and before a letter (so a new space character in DuckDB's trim would fail here)."""
    con = duckdb.connect()
    values = [None, "", "a", " a ", "a "]
    for code in range(1, 0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates are not characters
        ch = chr(code)
        values += [ch, ch * 2, ch + "a"]
    con.execute("CREATE TABLE t AS SELECT unnest($v) AS x", {"v": values})
    differ = con.execute(
        f"SELECT x FROM t WHERE {silver._missing('x')} IS DISTINCT FROM (x IS NULL OR trim(x) = '')"
    ).fetchall()
    assert differ == []
    missing = con.execute(f"SELECT count(*) FROM t WHERE {silver._missing('x')}").fetchone()
    assert missing is not None and missing[0] == 1 + 1 + 2 * len(silver._TRIMMED_CODEPOINTS)
