"""The daily digest: one message per shop day, with its KPIs against the day before and the
day's validation status. Delivered through the alert ledger (exactly once per day and sink,
whatever re-runs the medallion), so its id is the day's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from jobs.domain.alert import Alert
from jobs.domain.reports import ValidationReport

DIGEST_TYPE = "daily_digest"
KPIS = (  # (gold daily_summary column, label, kind)
    ("total_orders", "Orders", "int"),
    ("total_revenue", "Revenue", "money"),
    ("avg_order_value", "Average order", "money"),
    ("unique_customers", "Customers", "int"),
)
_STATUS = {"ok": "✅ ok", "warn": "⚠️ warn", "fail": "🛑 fail"}


def digest_id(day: dt.date) -> str:
    return f"digest-{day.isoformat()}"


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    return f"${float(value):,.2f}" if kind == "money" else f"{int(value):,}"


def _versus(now: Any, before: Any) -> str:
    if now is None or before is None or not float(before):
        return "no figure the day before"
    pct = (float(now) - float(before)) / float(before) * 100
    arrow = "▲" if pct > 0.05 else "▼" if pct < -0.05 else "■"
    return f"{arrow} {abs(pct):.1f}%"


def digest_text(
    day: dt.date,
    kpis: Mapping[str, Any] | None,
    before: Mapping[str, Any] | None,
    report: ValidationReport,
) -> str:
    """The message: the day's KPIs (gold) against the day before, and its validation."""
    lines = [f"📊 shoplake daily digest for {day.isoformat()}"]
    for column, label, kind in KPIS:
        now = kpis.get(column) if kpis else None
        prev = before.get(column) if before else None
        lines.append(f"{label}: {_shown(now, kind)} ({_versus(now, prev)} vs the day before)")
    counts = report.counts
    lines.append(
        f"Validation: {_STATUS.get(report.status, report.status)}; {counts.rejected:,} of "
        f"{counts.bronze:,} rows quarantined ({report.reject_rate:.1%})"
    )
    if report.reject_reasons:
        top = sorted(report.reject_reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        lines.append("Top reasons: " + ", ".join(f"{r} {n:,}" for r, n in top))
    return "\n".join(lines)


def digest_alert(day: dt.date, text: str, now: dt.datetime) -> Alert:
    """The digest as a ledger record: no order of its own, the day's id."""
    return Alert(
        alert_id=digest_id(day),
        alert_type=DIGEST_TYPE,
        severity="info",
        order_id=None,
        customer_id=None,
        product_name=None,
        total=None,
        quantity=None,
        price=None,
        detected_at=now.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        source_ts=None,
        message=text,
        source_lsn=0,
    )
