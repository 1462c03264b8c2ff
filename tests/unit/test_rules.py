"""Alert rules on edge values: thresholds, nulls, huge numbers, text, updates, ids, SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from jobs.domain.rules import (
    RULES,
    Col,
    Rule,
    alert_id,
    alerts_for_change,
    as_number,
    iso_ms,
    to_sql,
)
from jobs.settings import Settings

PARAMS = Settings(alert_high_value=10000, alert_max_quantity=50).alert_params()
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def row(**overrides):
    base = {
        "order_id": "ORD-1",
        "customer_id": "CUST-1",
        "product_name": "Desk",
        "price": Decimal("100.00"),
        "quantity": 2,
        "total": Decimal("200.00"),
    }
    return base | overrides


def event(op, after, before=None, lsn=1000):
    return {
        "op": op,
        "before": before,
        "after": after,
        "source": {"lsn": lsn, "ts_ms": 1767323045000, "txId": 7},
    }


def fired(op, after, before=None):
    return sorted(a["alert_type"] for a in alerts_for_change(event(op, after, before), PARAMS, NOW))


def test_a_clean_order_raises_nothing():
    assert fired("c", row()) == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("total", Decimal("10000.00"), []),  # exactly at the threshold: not above it
        ("total", Decimal("10000.01"), ["HIGH_VALUE_ORDER"]),
        ("quantity", 50, []),
        ("quantity", 51, ["SUSPICIOUS_QUANTITY"]),
        ("price", Decimal("0.00"), []),
        ("price", Decimal("-0.01"), ["NEGATIVE_PRICE"]),
        ("quantity", 1, []),
        ("quantity", 0, ["INVALID_QUANTITY"]),
        ("quantity", -3, ["INVALID_QUANTITY"]),
    ],
)
def test_thresholds_are_strict_where_spec_says_so(field, value, expected):
    assert fired("c", row(**{field: value})) == expected


def test_an_order_breaking_several_rules_gets_one_alert_per_rule():
    bad = row(price=Decimal("-5"), quantity=0, total=Decimal("99999"))
    assert fired("c", bad) == ["HIGH_VALUE_ORDER", "INVALID_QUANTITY", "NEGATIVE_PRICE"]


@pytest.mark.parametrize("value", [None, "", "abc", "12,5", True, "NaN", [1], {"a": 1}])
def test_nulls_and_non_numbers_never_fire_nor_crash(value):
    assert fired("c", row(price=value, quantity=value, total=value)) == []


def test_numbers_as_strings_count_as_numbers():
    # Debezium sends decimals as strings; both engines must agree
    assert fired("c", row(total="10000.50", quantity=" 60 ")) == [
        "HIGH_VALUE_ORDER",
        "SUSPICIOUS_QUANTITY",
    ]


def test_huge_numbers_fire_without_overflow():
    huge = "9" * 400
    assert fired("c", row(total=huge, quantity=int(huge))) == [
        "HIGH_VALUE_ORDER",
        "SUSPICIOUS_QUANTITY",
    ]
    assert fired("c", row(price="-1e999999")) == ["NEGATIVE_PRICE"]
    assert as_number(float("inf")) == Decimal("Infinity")
    assert as_number(float("nan")) is None


def test_updates_raise_only_newly_broken_rules():
    before = row(quantity=60)  # already suspicious
    assert fired("u", row(quantity=70), before) == []
    assert fired("u", row(quantity=70, total=Decimal("20000")), before) == ["HIGH_VALUE_ORDER"]
    assert fired("u", row(quantity=70), row()) == ["SUSPICIOUS_QUANTITY"]
    # no before image at all (replica identity not FULL): treated as newly broken
    assert fired("u", row(quantity=70), None) == ["SUSPICIOUS_QUANTITY"]


def test_deletes_and_snapshot_reads_raise_nothing():
    assert fired("d", None, row(quantity=0)) == []
    assert fired("r", row(quantity=0)) == []


def test_thresholds_come_from_settings():
    params = Settings(alert_high_value=100.5, alert_max_quantity=1).alert_params()
    alerts = alerts_for_change(event("c", row()), params, NOW)
    assert {a["alert_type"] for a in alerts} == {"HIGH_VALUE_ORDER", "SUSPICIOUS_QUANTITY"}
    assert params["alert_high_value"] == Decimal("100.5")


def test_alert_ids_are_deterministic_and_distinct():
    assert alert_id("ORD-1", "NEGATIVE_PRICE", 42) == alert_id("ORD-1", "NEGATIVE_PRICE", 42)
    ids = {alert_id(o, r, lsn) for o in ("ORD-1", "ORD-2") for r in ("A", "B") for lsn in (1, 2)}
    assert len(ids) == 8
    a1 = alerts_for_change(event("c", row(quantity=0), lsn=5), PARAMS, NOW)
    a2 = alerts_for_change(event("c", row(quantity=0), lsn=5), PARAMS, NOW + dt.timedelta(hours=1))
    assert [a["alert_id"] for a in a1] == [a["alert_id"] for a in a2]


def test_alert_record_has_the_spec_fields_with_exact_amounts():
    (alert,) = alerts_for_change(event("c", row(price=Decimal("-12.30"))), PARAMS, NOW)
    assert alert["alert_type"] == "NEGATIVE_PRICE" and alert["severity"] == "high"
    assert alert["price"] == "-12.30" and alert["total"] == "200.00" and alert["quantity"] == 2
    assert alert["order_id"] == "ORD-1" and alert["customer_id"] == "CUST-1"
    assert alert["detected_at"] == "2026-01-02T03:04:05.000+00:00"
    assert alert["source_ts"].startswith("2026-01-02T03:04:05")
    assert alert["message"] == "Price -12.30 is negative"


def inputs(rule: Rule) -> tuple[str, ...]:
    """The row's columns a rule reads."""
    terms = (rule.condition.left, rule.condition.right)
    return tuple(t.name for t in terms if isinstance(t, Col))


def test_rules_compile_to_sql_with_the_same_null_semantics():
    sql = {r.name: to_sql(r.condition, PARAMS) for r in RULES}
    assert sql["HIGH_VALUE_ORDER"] == (
        "COALESCE(TRY_CAST(`total` AS DECIMAL(38, 4)) > CAST(10000 AS DECIMAL(38, 4)), FALSE)"
    )
    assert "<= CAST(0 AS DECIMAL(38, 4))" in sql["INVALID_QUANTITY"]
    assert [inputs(r) for r in RULES] == [("total",), ("quantity",), ("price",), ("quantity",)]


def test_timestamps_have_exactly_three_fraction_digits():
    # the Flink job formats times with DATE_FORMAT(..., '.SSS'): both engines must agree
    assert iso_ms(1_767_323_045_007) == "2026-01-02T03:04:05.007+00:00"
    assert iso_ms(1_767_323_045_000) == "2026-01-02T03:04:05.000+00:00"
