"""Use case: the Data quality page's numbers: the medallion's validation reports and quarantine.

The reports are the JSON objects ``validate`` writes (``gold/validation/date=.../report.json``,
read back as ``ValidationReport``); the quarantined rows come from the ``rejected_orders`` view
of ``shoplake sql``. Blocking I/O: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import datetime as dt
import json

from jobs.adapters.lake import Lake
from jobs.adapters.lake.layout import VALIDATION_REPORT
from jobs.adapters.lake.views import lake_views
from jobs.domain.history import DEFAULT_SPAN_DAYS, clamp_range
from jobs.domain.quality import (
    PAGE_SIZE,
    QUARANTINE_COLUMNS,
    Quality,
    QuarantinePage,
    clamp_page,
    from_reports,
)
from jobs.domain.reports import ValidationReport


def report_days(lake: Lake) -> list[dt.date]:
    """Every day with a validation report, sorted."""
    return lake.partitions(VALIDATION_REPORT)


def read_report(lake: Lake, day: dt.date) -> ValidationReport:
    """The validation report of ``day`` (FileNotFoundError when that day has none)."""
    raw = lake.get_bytes(VALIDATION_REPORT.bucket, VALIDATION_REPORT.key(day))
    return ValidationReport.model_validate(json.loads(raw))


def read_quality(
    lake: Lake,
    start: dt.date | None = None,
    end: dt.date | None = None,
    last_days: int | None = DEFAULT_SPAN_DAYS,
) -> Quality | None:
    """The validation reports of ``start``..``end`` (a missing end: from the last
    ``last_days`` reported days, None for all of them).

    None when no day has been validated yet.
    """
    days = report_days(lake)
    chosen = clamp_range(start, end, days, last_days)
    if chosen is None:
        return None
    start, end = chosen
    reports = []
    for day in days:
        if start <= day <= end:
            try:
                reports.append(read_report(lake, day))
            except FileNotFoundError:  # replaced between the listing and the read
                continue
    return from_reports(reports, start, end, (days[0], days[-1]))


def read_quarantine(
    lake: Lake, day: dt.date, page: int = 0, size: int = PAGE_SIZE
) -> QuarantinePage:
    """One page of ``day``'s quarantined rows (ordered by order id, then version) and their
    count; a page past the end gives the last page."""
    cols = ", ".join(QUARANTINE_COLUMNS)
    with lake_views(lake, ("rejected_orders",)) as con:
        row = con.execute("SELECT count(*) FROM rejected_orders WHERE date = $d", {"d": day})
        found = row.fetchone()
        total = int(found[0]) if found else 0
        page = clamp_page(page, total, size)
        cur = con.execute(
            f"SELECT {cols} FROM rejected_orders WHERE date = $d"
            " ORDER BY order_id NULLS FIRST, updated_at NULLS FIRST, _reject_reason"
            " LIMIT $n OFFSET $o",
            {"d": day, "n": size, "o": page * size},
        )
        names = [c[0] for c in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return QuarantinePage(day=day, total=total, page=page, size=size, rows=rows)
