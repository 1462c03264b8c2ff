"""Dashboard metrics, their JSON shape, the page's view model and the live helpers (no I/O)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa

from jobs import dashboard_metrics
from jobs.domain import dashboard
from jobs.simulator import as_new, count_defects
from lite.up import missing_days
from tests.orders_data import DAY, NOON, order, orders_table
from web import charts
from web.state import LiveState

ROWS = [
    order(
        1,
        product_name="Lamp",
        category="Home",
        region="North",
        customer_id="C1",
        price=Decimal("10.00"),
        quantity=1,
        status="completed",
    ),
    order(
        2,
        product_name="Lamp",
        category="Home",
        region="South",
        customer_id="C2",
        price=Decimal("-5.50"),
        quantity=2,
        status="processing",
    ),  # repaired: 11.00
    order(
        3,
        product_name="Book",
        category="Books",
        region="North",
        customer_id="C1",
        price=Decimal("3.33"),
        quantity=3,
        total=Decimal("1.00"),
    ),  # recomputed: 9.99
    order(4, product_name="Book", status="pending"),  # not counted
    order(5, product_name="Book", status="cancelled"),  # not counted
    order(6, product_name="Book", quantity=0),  # rejected by silver
    order(7, product_name="Book", customer_id=None),  # rejected by silver
    order(8, product_name="Book", status=""),  # rejected by silver
]
LATER = NOON + dt.timedelta(hours=3)


def metrics(rows: list[dict], yesterday: list[dict] | None = None, tz: str = "UTC") -> dict:
    today = orders_table(rows)
    prev = dashboard_metrics.counted_rows(orders_table(yesterday or []))
    return dashboard_metrics.compute(today, prev, DAY, LATER, tz)


def test_only_clean_completed_and_processing_orders_count():
    (row,) = metrics(ROWS)["overall_metrics"].to_pylist()
    assert row["total_orders"] == 3
    assert row["total_revenue"] == Decimal("30.99")
    assert row["avg_order_value"] == Decimal("10.33")
    assert row["unique_customers"] == 2
    assert row["last_updated"] == LATER


def test_breakdowns():
    tables = metrics(ROWS)
    assert tables["top_products"].to_pylist() == [
        {"product_name": "Lamp", "order_count": 2, "quantity_sold": 3, "revenue": Decimal("21.00")},
        {"product_name": "Book", "order_count": 1, "quantity_sold": 3, "revenue": Decimal("9.99")},
    ]
    assert tables["category_stats"].column_names == [
        "category",
        "order_count",
        "revenue",
        "quantity_sold",
    ]
    assert tables["category_stats"].to_pylist()[0] == {
        "category": "Home",
        "order_count": 2,
        "revenue": Decimal("21.00"),
        "quantity_sold": 3,
    }
    assert tables["regional_stats"].to_pylist() == [
        {"region": "North", "order_count": 2, "revenue": Decimal("19.99")},
        {"region": "South", "order_count": 1, "revenue": Decimal("11.00")},
    ]
    assert tables["hourly_stats"].to_pylist() == [
        {"hour": 12, "order_count": 3, "revenue": Decimal("30.99")}
    ]


def test_hours_follow_the_time_zone():
    tables = metrics(ROWS, tz="Asia/Kolkata")  # UTC+05:30: 12:01 UTC is 17:31 local
    assert tables["hourly_stats"].column("hour").to_pylist() == [17]


def test_top_products_keeps_ten():
    rows = [order(i, product_name=f"P{i:02d}", price=Decimal(i)) for i in range(1, 15)]
    top = metrics(rows)["top_products"].column("product_name").to_pylist()
    assert top == [f"P{i:02d}" for i in range(14, 4, -1)]


def test_empty_day_gives_zeros_and_no_breakdowns():
    tables = metrics([])
    (row,) = tables["overall_metrics"].to_pylist()
    assert (row["total_orders"], row["total_revenue"], row["unique_customers"]) == (0, 0, 0)
    assert all(
        tables[n].num_rows == 0
        for n in ("top_products", "category_stats", "regional_stats", "hourly_stats")
    )


def test_yesterday_counts_only_up_to_the_same_clock_time():
    before = order(20, order_date=NOON - dt.timedelta(days=1))  # 12:00 yesterday: counts
    after = order(21, order_date=LATER - dt.timedelta(days=1, minutes=-1))  # 15:01: not yet
    (row,) = metrics(ROWS, [before, after])["overall_metrics"].to_pylist()
    assert row["yesterday_total_orders"] == 1
    assert row["yesterday_total_revenue"] == Decimal("20.00")


def test_same_time_yesterday_is_local_clock_time_across_dst():
    paris = ZoneInfo("Europe/Paris")
    now = dt.datetime(2024, 3, 31, 12, 0, tzinfo=paris)  # the day clocks went forward
    assert same_local(dashboard_metrics.same_time_yesterday(now, paris), paris) == (
        dt.date(2024, 3, 30),
        dt.time(12, 0),
    )
    assert now - dashboard_metrics.same_time_yesterday(now, paris) == dt.timedelta(hours=23)


def same_local(ts: dt.datetime, tz: ZoneInfo) -> tuple[dt.date, dt.time]:
    local = ts.astimezone(tz)
    return local.date(), local.time()


def test_payload_is_json_ready():
    tables = metrics(ROWS, [order(20, order_date=NOON - dt.timedelta(days=1))])
    payload = dashboard.payload_metrics(tables, DAY, "UTC", "run-1").model_dump(mode="json")
    overall = payload["overall_metrics"]
    assert overall["total_revenue"] == 30.99 and overall["yesterday_total_orders"] == 1
    assert overall["last_updated"] == LATER.isoformat()
    assert payload["run_id"] == "run-1" and payload["date"] == "2024-03-05"
    assert payload["top_products"][0]["revenue"] == 21.0


def test_change_and_kpi_text():
    assert dashboard.change(150, 100) == 50.0
    assert dashboard.change(5, 0) is None
    overall = {
        "total_revenue": 110.0,
        "yesterday_total_revenue": 100.0,
        "total_orders": 3,
        "yesterday_total_orders": 0,
    }
    assert charts.delta(overall, "total_revenue", "money") == (
        "▲ 10.0% vs same time yesterday ($100.00)",
        "up",
    )
    assert charts.delta(overall, "total_orders", "int")[1] == "flat"
    assert charts.fmt(1234567.5, "money") == "$1,234,567.50"
    assert charts.fmt(1234, "int") == "1,234"


def test_hourly_chart_has_every_hour():
    option = charts.hourly_option([{"hour": 3, "order_count": 2, "revenue": 9.5}])
    orders, revenue = option["series"]
    assert len(option["xAxis"]["data"]) == 24
    assert orders["data"][3] == 2 and sum(orders["data"]) == 2 and revenue["data"][3] == 9.5


def test_live_state_never_goes_back_in_time():
    state = LiveState()

    def msg(stamp: str) -> dict:
        return {"metrics": {"overall_metrics": {"last_updated": stamp}}}

    assert state.accept(msg("2024-03-05T12:00:30+00:00"))
    assert not state.accept(msg("2024-03-05T12:00:00+00:00"))  # a late lake read
    assert state.accept(msg("2024-03-05T12:01:00+00:00"))
    assert state.view().version == 2


def test_missing_days_for_the_catch_up():
    y = dt.date(2024, 3, 10)
    have = {dt.date(2024, 3, 8)}
    assert missing_days(dt.date(2024, 3, 7), y, have, 30) == [
        dt.date(2024, 3, 7),
        dt.date(2024, 3, 9),
        dt.date(2024, 3, 10),
    ]
    assert missing_days(dt.date(2024, 1, 1), y, have, 2) == [y - dt.timedelta(days=1), y]
    assert missing_days(None, y, have, 30) == []
    assert missing_days(dt.date(2024, 3, 11), y, have, 30) == []  # only today has orders


def test_simulated_orders_start_pending_and_defects_are_counted():
    rows = orders_table(
        [
            order(1, status="completed"),
            order(2, status=""),
            order(3, price=Decimal("-1.00")),
            order(4, quantity=0),
        ]
    )
    new = as_new(rows)
    assert new.column("status").to_pylist() == ["pending", "", "pending", "pending"]
    assert new.column("updated_at") == new.column("created_at")
    assert count_defects(rows) == 3
    assert count_defects(rows.slice(0, 1)) == 0
    assert isinstance(new, pa.Table)


def test_kept_rows_replace_changed_orders_and_compact_when_stale() -> None:
    """Changed rows replace their older versions in the kept day (marked, then compacted
    once a quarter is stale); the figures equal a recomputation over the current rows."""
    kept = dashboard_metrics.TodayRows("postgresql://unused", "UTC")
    try:
        kept._load(orders_table(ROWS))
        prev = dashboard_metrics.counted_rows(orders_table([]))
        current = {r["order_id"]: r for r in ROWS}
        # 1: a price change and a new order: marked, not compacted (2 of 9 rows stale)
        changes = [
            {**current[ROWS[0]["order_id"]], "price": Decimal("20.00")},
            order(9, product_name="Pen", status="completed", price=Decimal("2.00")),
        ]
        kept._replace(orders_table(changes))
        current.update({r["order_id"]: r for r in changes})
        assert kept.live is not None and kept.rows.num_rows == 10
        day = dashboard_metrics.DayRows(kept.rows, kept.live)
        assert day.count == len(current) == 9
        assert sorted(day.table()["order_id"].to_pylist()) == sorted(current)
        expected = dashboard_metrics.compute(
            orders_table(list(current.values())), prev, DAY, LATER, "UTC"
        )
        assert kept.metrics(prev, DAY, LATER) == expected
        # 2: three more updates: a quarter stale, so the kept rows are compacted
        changes = [{**current[r["order_id"]], "quantity": 5} for r in ROWS[1:4]]
        kept._replace(orders_table(changes))
        current.update({r["order_id"]: r for r in changes})
        assert kept.live is None and kept.rows.num_rows == len(current) == 9
        expected = dashboard_metrics.compute(
            orders_table(list(current.values())), prev, DAY, LATER, "UTC"
        )
        assert kept.metrics(prev, DAY, LATER) == expected
    finally:
        kept.close()
