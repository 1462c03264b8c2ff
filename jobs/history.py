"""Use case: the History page's numbers, read from the gold views that ``shoplake sql`` has.

``daily_summary``, ``category_performance`` and ``regional_performance`` are queried through
``lake_views`` (the same views as ``shoplake sql``), so the page and a query agree by
construction; the shaping is ``jobs.domain.history``. Blocking I/O: callers on an event loop
run it in a thread.
"""

from __future__ import annotations

import datetime as dt

from jobs.adapters.lake import Lake
from jobs.adapters.lake.layout import DAILY_SUMMARY
from jobs.adapters.lake.views import lake_views
from jobs.domain.history import DEFAULT_SPAN_DAYS, DayKpis, History, clamp_range, mix

GOLD_VIEWS = ("daily_summary", "category_performance", "regional_performance")


def available_days(lake: Lake) -> list[dt.date]:
    """Every day with a gold ``daily_summary`` partition, sorted."""
    return lake.partitions(DAILY_SUMMARY)


def read_history(
    lake: Lake,
    start: dt.date | None = None,
    end: dt.date | None = None,
    last_days: int | None = DEFAULT_SPAN_DAYS,
) -> History | None:
    """Gold KPIs per day and the category and region mixes of ``start``..``end`` (inclusive;
    a missing end: from the last ``last_days`` days the lake has, None for all of them).
    None when the lake has no gold yet."""
    days = available_days(lake)
    chosen = clamp_range(start, end, days, last_days)
    if chosen is None:
        return None
    start, end = chosen
    span = {"s": start, "e": end}
    with lake_views(lake, GOLD_VIEWS) as con:
        kpis = con.execute(
            "SELECT date, total_orders, total_revenue, avg_order_value FROM daily_summary"
            " WHERE date BETWEEN $s AND $e ORDER BY date",
            span,
        ).fetchall()
        categories = con.execute(
            "SELECT date, category, revenue FROM category_performance WHERE date BETWEEN $s AND $e",
            span,
        ).fetchall()
        regions = con.execute(
            "SELECT date, region, revenue FROM regional_performance WHERE date BETWEEN $s AND $e",
            span,
        ).fetchall()
    rows = [DayKpis(d, int(n), rev, aov) for d, n, rev, aov in kpis]
    in_range = [r.day for r in rows]
    return History(
        start=start,
        end=end,
        available=(days[0], days[-1]),
        days=rows,
        categories=mix(categories, in_range),
        regions=mix(regions, in_range),
    )
