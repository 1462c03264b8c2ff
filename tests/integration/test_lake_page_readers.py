"""The lake pages' readers on a real lake: the same numbers as `shoplake sql`, every quarantined
row exactly once across pages, the medallion's own reports, and an empty lake."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from jobs import medallion, sql
from jobs.bootstrap import lake_for
from jobs.history import read_history
from jobs.quality import read_quality, read_quarantine
from jobs.settings import Settings
from tests.support.lake_days import END, seeded_lake

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_settings: Settings, s3_settings: Settings) -> Settings:
    return pg_settings


def test_readers_agree_with_shoplake_sql_and_the_medallion(settings: Settings) -> None:
    days = seeded_lake(settings, days=5, orders_per_day=200)
    lake = lake_for(settings)
    start, end = days[1], days[3]

    h = read_history(lake, start, end)
    assert h is not None and (h.start, h.end, h.available) == (start, end, (days[0], END))
    got = sql.run_sql(
        settings,
        "SELECT date, total_orders, total_revenue, avg_order_value FROM daily_summary"
        f" WHERE date BETWEEN DATE '{start}' AND DATE '{end}' ORDER BY date",
    )
    assert [(d.day, d.orders, d.revenue, d.avg_order_value) for d in h.days] == got.rows
    mix = sql.run_sql(
        settings,
        "SELECT region, sum(revenue) FROM regional_performance"
        f" WHERE date BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY 1 ORDER BY 2 DESC",
    )
    assert h.regions.keys == [r[0] for r in mix.rows]
    assert [round(sum(h.regions.values[k]), 2) for k in h.regions.keys] == [
        float(r[1]) for r in mix.rows
    ]
    assert read_history(lake) is not None  # default: the last 30 days, here all 5

    q = read_quality(lake)
    assert q is not None and [d.day for d in q.days] == days
    report = medallion.validate(settings, days[2])
    (day2,) = [d for d in q.days if d.day == days[2]]
    assert (day2.bronze, day2.rejected, day2.reasons) == (
        report.counts.bronze,
        report.counts.rejected,
        report.reject_reasons,
    )

    # every quarantined row of the day exactly once over the pages, in a stable order
    own = sql.run_sql(
        settings,
        f"SELECT order_id, _reject_reason FROM rejected_orders WHERE date = DATE '{days[2]}'",
    ).rows
    assert len(own) == report.counts.rejected >= 4
    seen: list[tuple[object, object]] = []
    pages = -(-len(own) // 3)
    for page in range(pages):
        got_page = read_quarantine(lake, days[2], page, size=3)
        assert (got_page.total, got_page.page, got_page.pages) == (len(own), page, pages)
        seen += [(r["order_id"], r["_reject_reason"]) for r in got_page.rows]
    assert Counter(seen) == Counter(own)
    past_end = read_quarantine(lake, days[2], 99, size=3)
    assert past_end.page == pages - 1  # clamped to the last page
    assert read_quarantine(lake, dt.date(2000, 1, 1)).total == 0


def test_readers_on_a_lake_without_gold(settings: Settings) -> None:
    lake = lake_for(settings)
    assert read_history(lake) is None
    assert read_quality(lake) is None
