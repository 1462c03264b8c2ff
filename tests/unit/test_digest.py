"""The daily digest's text, its record, and how the sinks show it."""

from __future__ import annotations

import datetime as dt
import io

from jobs.alerts.sinks.console import ConsoleSink
from jobs.digest import is_recent
from jobs.domain import alert_format, digest
from jobs.domain.alert import Alert
from jobs.domain.reports import (
    GoldTotals,
    LayerCounts,
    Repaired,
    Thresholds,
    ValidationReport,
)

DAY = dt.date(2024, 3, 5)
NOW = dt.datetime(2024, 3, 6, 0, 30, tzinfo=dt.UTC)


def report(status: str = "ok", rejected: int = 12) -> ValidationReport:
    return ValidationReport(
        date=DAY.isoformat(),
        status=status,  # type: ignore[arg-type]
        consistent=True,
        counts=LayerCounts(bronze=1200, silver=1200 - rejected, rejected=rejected),
        reject_rate=rejected / 1200,
        reject_reasons={"missing_price": 7, "invalid_quantity": 5} if rejected else {},
        repaired=Repaired(price=3, total_mismatch=1),
        gold=GoldTotals(total_orders=1188, total_revenue="52000.00"),
        thresholds=Thresholds(warn=0.1, fail=0.5),
        validated_at=NOW.isoformat(),
    )


KPIS = {
    "total_orders": 1188,
    "total_revenue": 52000.0,
    "avg_order_value": 43.77,
    "unique_customers": 900,
}
BEFORE = {
    "total_orders": 1080,
    "total_revenue": 52000.0,
    "avg_order_value": 48.15,
    "unique_customers": 0,
}


def test_the_text_compares_each_kpi_with_the_day_before() -> None:
    text = digest.digest_text(DAY, KPIS, BEFORE, report("warn"))
    lines = text.splitlines()
    assert lines[0] == "📊 shoplake daily digest for 2024-03-05"
    assert lines[1] == "Orders: 1,188 (▲ 10.0% vs the day before)"
    assert lines[2] == "Revenue: $52,000.00 (■ 0.0% vs the day before)"
    assert lines[3] == "Average order: $43.77 (▼ 9.1% vs the day before)"
    assert lines[4] == "Customers: 900 (no figure the day before vs the day before)"
    assert lines[5] == "Validation: ⚠️ warn; 12 of 1,200 rows quarantined (1.0%)"
    assert lines[6] == "Top reasons: missing_price 7, invalid_quantity 5"


def test_a_first_day_has_nothing_to_compare_with() -> None:
    text = digest.digest_text(DAY, KPIS, None, report(rejected=0))
    assert "Orders: 1,188 (no figure the day before" in text
    assert "Top reasons" not in text and "0 of 1,200 rows quarantined (0.0%)" in text


def test_the_record_is_keyed_by_the_day() -> None:
    alert = digest.digest_alert(DAY, "hello", NOW)
    assert alert.alert_id == "digest-2024-03-05" == digest.digest_id(DAY)
    assert alert.alert_type == digest.DIGEST_TYPE and alert.order_id is None
    assert Alert.from_record(dict(alert)) == alert  # travels through the ledger unchanged


def test_a_digest_is_a_message_of_its_own_and_shown_whole() -> None:
    text = digest.digest_text(DAY, KPIS, BEFORE, report())
    d = digest.digest_alert(DAY, text, NOW)
    other = Alert.from_record(
        {
            **dict(d),
            "alert_id": "a1",
            "alert_type": "HIGH_VALUE",
            "severity": "high",
            "order_id": "O1",
            "message": "big",
        }
    )
    groups = alert_format.plan_messages([other, d, other])
    assert [[a.alert_id for a in g] for g in groups] == [["a1"], [d.alert_id], ["a1"]]
    assert alert_format.message_text([d]) == text
    out = io.StringIO()
    ConsoleSink(out).send([d], batch_key="k")
    assert out.getvalue() == text + "\n"


def test_only_the_latest_days_get_a_digest() -> None:
    assert is_recent(DAY, "UTC", NOW)  # yesterday
    assert is_recent(DAY + dt.timedelta(days=1), "UTC", NOW)  # today
    assert not is_recent(DAY - dt.timedelta(days=1), "UTC", NOW)
    # 00:30 UTC is still the 5th in New York: the 5th is today there, the 4th yesterday
    assert is_recent(DAY - dt.timedelta(days=1), "America/New_York", NOW)
