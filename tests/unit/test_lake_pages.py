"""The History and Data quality pages' pure parts: ranges, mixes, report rows, quarantine pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from jobs.domain import history, quality
from jobs.domain.reports import (
    GoldTotals,
    LayerCounts,
    Repaired,
    Thresholds,
    ValidationReport,
)
from web import lake_charts
from web.date_range import PRESET_DAYS, Ask, fixed, parse_day, span_text
from web.quarantine import count_text

D = dt.date(2024, 3, 10)


def day(offset: int) -> dt.date:
    return D + dt.timedelta(days=offset)


def test_default_range_is_the_last_30_days_the_lake_has() -> None:
    assert history.default_range([]) is None
    many = [day(-i) for i in range(90)]
    assert history.default_range(many) == (day(-29), D)
    few = [day(-2), D, day(-1)]
    assert history.default_range(few) == (day(-2), D)
    # gaps count as calendar days: the range is 30 days long, not 30 partitions
    sparse = [day(-60), day(-40), day(-10), D]
    assert history.default_range(sparse) == (day(-29), D)


def test_clamp_range_fills_missing_ends_and_swaps_reversed_ones() -> None:
    avail = [day(-i) for i in range(40)]
    assert history.clamp_range(None, None, []) is None
    assert history.clamp_range(None, None, avail) == (day(-29), D)
    assert history.clamp_range(day(-3), None, avail) == (day(-3), D)
    assert history.clamp_range(None, day(-35), avail) == (day(-35), day(-29))
    assert history.clamp_range(D, day(-5), avail) == (day(-5), D)
    # outside the lake: kept as asked (the page shows no days rather than other ones)
    assert history.clamp_range(day(100), day(101), avail) == (day(100), day(101))


def test_mix_pivots_revenue_onto_the_days_largest_key_first() -> None:
    days = [day(-1), D]
    rows = [
        (day(-1), "Books", Decimal("10.50")),
        (D, "Books", Decimal("4.50")),
        (D, "Electronics", Decimal("100")),
        (D, None, Decimal("1")),
        (day(-7), "Grocery", Decimal("999")),  # not a day of the range
    ]
    mix = history.mix(rows, days)
    assert mix.keys == ["Electronics", "Books", history.OTHER]
    assert mix.values == {
        "Electronics": [0.0, 100.0],
        "Books": [10.5, 4.5],
        history.OTHER: [0.0, 1.0],
    }
    assert mix.share("Books") == pytest.approx(15 / 116)
    assert history.mix([], []).share("Books") == 0.0


def test_history_totals_weigh_days_by_their_orders() -> None:
    days = [
        history.DayKpis(day(-1), 1, Decimal("100.00"), Decimal("100.00")),
        history.DayKpis(D, 3, Decimal("30.00"), Decimal("10.00")),
    ]
    empty = history.Mix([], [], {})
    h = history.History(day(-1), D, (day(-1), D), days, empty, empty)
    assert (h.orders, h.revenue) == (4, Decimal("130.00"))
    assert h.avg_order_value == Decimal("32.50")  # not the mean of 100 and 10
    none = history.History(D, D, None, [], empty, empty)
    assert none.avg_order_value is None and none.revenue == 0


def report(
    on: dt.date,
    bronze: int,
    reasons: dict[str, int],
    status: str = "ok",
    warn: float = 0.1,
    repaired: tuple[int, int] = (0, 0),
) -> ValidationReport:
    rejected = sum(reasons.values())
    return ValidationReport(
        date=on.isoformat(),
        status=status,  # type: ignore[arg-type]
        consistent=True,
        counts=LayerCounts(bronze=bronze, silver=bronze - rejected, rejected=rejected),
        reject_rate=rejected / bronze,
        reject_reasons=reasons,
        repaired=Repaired(price=repaired[0], total_mismatch=repaired[1]),
        gold=GoldTotals(total_orders=bronze - rejected, total_revenue="1.00"),
        thresholds=Thresholds(warn=warn, fail=0.5),
        validated_at="2024-03-11T00:00:00+00:00",
    )


def test_quality_orders_days_and_stacks_reasons() -> None:
    reports = [
        report(D, 100, {"missing_status": 3, "invalid_quantity": 1}, repaired=(2, 5)),
        report(day(-1), 50, {"invalid_quantity": 10}, status="warn", warn=0.2),
        report(day(-9), 10, {"missing_status": 1}),  # outside the range
    ]
    q = quality.from_reports(reports, day(-1), D, (day(-9), D))
    assert [d.day for d in q.days] == [day(-1), D]
    assert q.reasons == ["invalid_quantity", "missing_status"]
    assert q.reason_series() == {"invalid_quantity": [10, 1], "missing_status": [0, 3]}
    assert (q.bronze, q.rejected) == (150, 14)
    assert q.reject_rate == pytest.approx(14 / 150)
    assert q.status_counts() == {"ok": 1, "warn": 1, "fail": 0}
    assert q.warn_rate == 0.1  # the latest report's threshold
    latest = q.days[-1]
    assert (latest.price_repaired, latest.total_mismatch, latest.rejected) == (2, 5, 4)
    empty = quality.from_reports([], D, D, None)
    assert empty.days == [] and empty.reject_rate == 0.0 and empty.warn_rate is None


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 20, 1), (1, 20, 1), (20, 20, 1), (21, 20, 2), (45, 20, 3)]
)
def test_page_count(total: int, size: int, pages: int) -> None:
    assert quality.page_count(total, size) == pages


def test_clamp_page_and_the_rows_a_page_shows() -> None:
    assert quality.clamp_page(-1, 45, 20) == 0
    assert quality.clamp_page(7, 45, 20) == 2
    assert quality.clamp_page(3, 0, 20) == 0
    page = quality.QuarantinePage(D, 45, 2, 20, [{}] * 5)
    assert (page.first, page.last, page.pages) == (41, 45, 3)
    none = quality.QuarantinePage(D, 0, 0, 20, [])
    assert (none.first, none.last, none.pages) == (0, 0, 1)


def test_display_row_makes_text_of_lists_times_and_nulls() -> None:
    row = {
        "order_id": None,
        "_reject_reason": "missing_order_id",
        "_reject_reasons": ["missing_order_id", "invalid_quantity"],
        "order_date": dt.datetime(2024, 3, 9, 10, 38, 29, 459133, tzinfo=dt.UTC),
        "price": Decimal("-4.50"),
        "quantity": 0,
    }
    shown = quality.display_row(row)
    assert shown["order_id"] == ""
    assert shown["_reject_reasons"] == "missing_order_id, invalid_quantity"
    assert shown["order_date"] == "2024-03-09 10:38:29"
    assert (shown["price"], shown["quantity"], shown["status"]) == ("-4.50", "0", "")
    assert list(shown) == list(quality.QUARANTINE_COLUMNS)


def test_presets_follow_the_lake_and_typed_days_are_fixed() -> None:
    avail = [day(-i) for i in range(61)]
    for key, want in (("7", (day(-6), D)), ("90", (day(-60), D)), ("all", (day(-60), D))):
        ask = Ask(last_days=PRESET_DAYS[key])
        assert ask.preset == key
        assert history.clamp_range(ask.start, ask.end, avail, ask.last_days) == want
    assert Ask().preset == "30"  # the default
    # a preset moves with the lake: a new day shifts the window
    later = [day(1), *avail]
    assert history.clamp_range(None, None, later, 7) == (day(-5), day(1))
    typed = fixed(D, day(-3))
    assert (typed.start, typed.end, typed.preset) == (day(-3), D, None)
    assert parse_day(" 2024-03-10 ") == D
    assert parse_day("2024/03/10") == D  # Quasar's calendar mask
    assert parse_day("2024-03-1") is None and parse_day(None) is None


def test_chart_options_follow_the_days() -> None:
    days = [day(-1), D]
    opt = lake_charts.daily_option(days, [1.0, 2.0], [3, 4])
    assert opt["xAxis"]["data"] == ["Mar 09", "Mar 10"]
    assert [s["data"] for s in opt["series"]] == [[1.0, 2.0], [3, 4]]
    assert opt["animationDurationUpdate"] == 0  # no overlapping labels mid-update
    stacked = lake_charts.stacked_option(days, {"A": [1.234, 0.0], "B": [2.0, 3.0]})
    assert [(s["name"], s["stack"], s["data"]) for s in stacked["series"]] == [
        ("A", "total", [1.23, 0.0]),
        ("B", "total", [2.0, 3.0]),
    ]
    rejects = lake_charts.reject_option(days, {"x": [1, 2]}, [0.01, 0.125], 0.1)
    rate = rejects["series"][-1]
    assert rate["data"] == [1.0, 12.5] and rate["markLine"]["data"] == [{"yAxis": 10.0}]
    assert "markLine" not in lake_charts.reject_option(days, {}, [0, 0], None)["series"][-1]


def test_mix_as_shares_of_each_day() -> None:
    days = [day(-1), D]
    series = {"A": [30.0, 0.0], "B": [10.0, 0.0]}
    assert lake_charts.shares(series) == {"A": [75.0, 0.0], "B": [25.0, 0.0]}
    assert lake_charts.shares({}) == {}
    share = lake_charts.mix_option(days, series, share=True)
    assert [s["data"] for s in share["series"]] == [[75.0, 0.0], [25.0, 0.0]]
    assert share["yAxis"]["max"] == 100
    revenue = lake_charts.mix_option(days, series, share=False)
    assert [s["data"] for s in revenue["series"]] == [[30.0, 0.0], [10.0, 0.0]]


def test_span_text() -> None:
    assert span_text(day(-7), D, (day(-30), D), "gold") == (
        "Mar 03 – Mar 10, 2024 (gold: Feb 09, 2024 – Mar 10, 2024)"
    )
    assert span_text(dt.date(2023, 12, 30), D, None, "gold") == "Dec 30, 2023 – Mar 10, 2024"


def test_quarantine_count_text() -> None:
    assert count_text(quality.QuarantinePage(D, 45, 1, 20, [{}] * 20)) == (
        "45 rows quarantined on 2024-03-10 · showing 21–40 (page 2 of 3)"
    )
    assert count_text(quality.QuarantinePage(D, 1, 0, 20, [{}])) == (
        "1 row quarantined on 2024-03-10 · showing 1–1 (page 1 of 1)"
    )
    assert count_text(quality.QuarantinePage(D, 0, 0, 20, [])) == "0 rows quarantined on 2024-03-10"
