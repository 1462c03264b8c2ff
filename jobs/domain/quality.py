"""The dashboard's Data quality page as data: validation reports over days, quarantine pages.

Pure shaping of what the medallion wrote (``jobs.domain.reports.ValidationReport`` per day,
the quarantined rows of ``rejected_orders``); the reading is ``jobs.quality``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from jobs.domain.reports import ValidationReport

PAGE_SIZE = 25  # quarantined rows per page
# the quarantine's columns the browser shows, in order (``_reject_reasons``: all of a row's)
QUARANTINE_COLUMNS = (
    "order_id",
    "_reject_reason",
    "_reject_reasons",
    "order_date",
    "customer_id",
    "product_name",
    "price",
    "quantity",
    "total",
    "status",
    "updated_at",
)


@dataclass(frozen=True)
class QualityDay:
    """One day's validation, flattened for a table row."""

    day: dt.date
    status: str
    consistent: bool
    bronze: int
    silver: int
    rejected: int
    reject_rate: float
    reasons: dict[str, int]
    price_repaired: int
    total_mismatch: int

    @classmethod
    def of(cls, report: ValidationReport) -> QualityDay:
        return cls(
            day=dt.date.fromisoformat(report.date),
            status=report.status,
            consistent=report.consistent,
            bronze=report.counts.bronze,
            silver=report.counts.silver,
            rejected=report.counts.rejected,
            reject_rate=report.reject_rate,
            reasons=dict(report.reject_reasons),
            price_repaired=report.repaired.price,
            total_mismatch=report.repaired.total_mismatch,
        )


@dataclass(frozen=True)
class Quality:
    """The validation of every reported day of a range, oldest first."""

    start: dt.date
    end: dt.date
    available: tuple[dt.date, dt.date] | None  # the first and last reported day in the lake
    days: list[QualityDay]
    warn_rate: float | None  # the warning threshold of the latest report, for the chart

    @property
    def reasons(self) -> list[str]:
        """Every reject reason seen in the range, the most frequent first."""
        totals: dict[str, int] = {}
        for day in self.days:
            for reason, n in day.reasons.items():
                totals[reason] = totals.get(reason, 0) + n
        return sorted(totals, key=lambda r: (-totals[r], r))

    def reason_series(self) -> dict[str, list[int]]:
        """Rejected rows per reason per day (0 where a day had none), for a stacked chart."""
        return {r: [d.reasons.get(r, 0) for d in self.days] for r in self.reasons}

    @property
    def bronze(self) -> int:
        return sum(d.bronze for d in self.days)

    @property
    def rejected(self) -> int:
        return sum(d.rejected for d in self.days)

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.bronze if self.bronze else 0.0

    def status_counts(self) -> dict[str, int]:
        """How many days are ok, warn and fail."""
        counts = {"ok": 0, "warn": 0, "fail": 0}
        for d in self.days:
            counts[d.status] = counts.get(d.status, 0) + 1
        return counts


def from_reports(
    reports: list[ValidationReport],
    start: dt.date,
    end: dt.date,
    available: tuple[dt.date, dt.date] | None,
) -> Quality:
    """The reports of ``start``..``end`` (inclusive) as one ``Quality``, oldest day first."""
    days = sorted((QualityDay.of(r) for r in reports), key=lambda d: d.day)
    days = [d for d in days if start <= d.day <= end]
    warn = max(reports, key=lambda r: r.date).thresholds.warn if reports else None
    return Quality(start=start, end=end, available=available, days=days, warn_rate=warn)


@dataclass(frozen=True)
class QuarantinePage:
    """One page of a day's quarantined rows and how many there are in all."""

    day: dt.date
    total: int
    page: int  # 0-based
    size: int
    rows: list[dict[str, Any]]

    @property
    def pages(self) -> int:
        return page_count(self.total, self.size)

    @property
    def first(self) -> int:
        """The 1-based position of the first row shown (0 when there is none)."""
        return self.page * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.page * self.size + len(self.rows)


def page_count(total: int, size: int) -> int:
    """Pages needed for ``total`` rows (at least 1, so an empty day has page 1 of 1)."""
    return max(1, math.ceil(total / size))


def clamp_page(page: int, total: int, size: int) -> int:
    """``page`` (0-based) limited to the pages that exist."""
    return min(max(0, page), page_count(total, size) - 1)


def display_row(row: dict[str, Any]) -> dict[str, Any]:
    """A quarantined row as text for a table: reasons joined, times in ISO, NULL as empty."""
    out: dict[str, Any] = {}
    for col in QUARANTINE_COLUMNS:
        value = row.get(col)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        elif value is None:
            value = ""
        else:
            value = str(value)
        out[col] = value
    return out
