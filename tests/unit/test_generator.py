"""The generator: deterministic, defects at their rates, and the structure a data person expects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from jobs.domain import generator as g
from jobs.domain.generator_catalog import (
    CATEGORIES,
    HOUR_WEIGHTS,
    SEGMENT_CATEGORY_PREF,
    SEGMENTS,
    WEEKDAY_WEIGHTS,
)

SEED = 7
FIRST = dt.date(2024, 3, 4)  # a Monday
DAYS = 28
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)  # after the window: nothing clipped


@pytest.fixture(scope="module")
def model() -> g.ShopModel:
    return g.build_model(SEED, n_customers=2000, n_products=400, reference=FIRST)


@pytest.fixture(scope="module")
def history(model: g.ShopModel) -> pa.Table:
    days = [FIRST + dt.timedelta(days=i) for i in range(DAYS)]
    return pa.concat_tables(
        [g.orders_for_day(model, SEED, d, 2500, tz="UTC", now=NOW) for d in days]
    )


def col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def money_cents(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(pc.multiply(table.column(name), 100).cast(pa.int64()).to_numpy())


# ------------------------------------------------------------------ determinism and schema
def test_same_seed_same_data(model: g.ShopModel) -> None:
    again = g.build_model(SEED, n_customers=2000, n_products=400, reference=FIRST)
    assert again.customers.equals(model.customers)
    assert again.products.equals(model.products)
    a = g.orders_for_day(model, SEED, FIRST, 500, now=NOW)
    b = g.orders_for_day(again, SEED, FIRST, 500, now=NOW)
    assert a.num_rows > 0 and a.equals(b)


def test_other_seed_other_data(model: g.ShopModel) -> None:
    a = g.orders_for_day(model, SEED, FIRST, 500, now=NOW)
    b = g.orders_for_day(model, SEED + 1, FIRST, 500, now=NOW)
    assert not a.column("order_date").equals(b.column("order_date"))


def test_a_day_does_not_depend_on_the_other_days(model: g.ShopModel, history: pa.Table) -> None:
    day = FIRST + dt.timedelta(days=5)
    alone = g.orders_for_day(model, SEED, day, 2500, now=NOW)
    start, end = g.day_window(day, "UTC")
    in_history = history.filter(
        pc.and_(
            pc.greater_equal(history.column("order_date"), pa.scalar(start, g.TS_UTC)),
            pc.less(history.column("order_date"), pa.scalar(end, g.TS_UTC)),
        )
    )
    assert alone.equals(in_history)


def test_schemas(model: g.ShopModel, history: pa.Table) -> None:
    assert history.schema.equals(g.ORDERS_SCHEMA)
    assert model.customers.schema.equals(g.CUSTOMERS_SCHEMA)
    assert model.products.schema.equals(g.PRODUCTS_SCHEMA)
    assert history.schema.field("price").type == pa.decimal128(12, 2)
    assert history.schema.field("order_date").type == pa.timestamp("us", tz="UTC")


def test_keys_unique_and_well_formed(model: g.ShopModel, history: pa.Table) -> None:
    ids = history.column("order_id")
    assert pc.count_distinct(ids).as_py() == history.num_rows
    assert pc.all(pc.match_substring_regex(ids, r"^ORD-\d{8}-\d{6}$")).as_py()
    assert pc.count_distinct(model.customers.column("customer_id")).as_py() == 2000
    assert pc.count_distinct(model.customers.column("email")).as_py() == 2000
    assert pc.count_distinct(model.products.column("product_id")).as_py() == 400
    assert pc.count_distinct(model.products.column("product_name")).as_py() == 400


def test_ids_follow_time_and_local_date(model: g.ShopModel) -> None:
    day = dt.date(2024, 3, 10)
    t = g.orders_for_day(model, SEED, day, 300, tz="Asia/Kolkata", now=NOW)
    ts = col(t, "order_date").astype("datetime64[us]").astype(np.int64)
    assert np.all(np.diff(ts) >= 0)
    ids = t.column("order_id").to_pylist()
    assert ids[0] == "ORD-20240310-000001" and ids[-1] == f"ORD-20240310-{len(ids):06d}"
    start, end = g.day_window(day, "Asia/Kolkata")
    assert start == dt.datetime(2024, 3, 9, 18, 30, tzinfo=dt.UTC)
    assert pc.min(t.column("order_date")).as_py() >= start
    assert pc.max(t.column("order_date")).as_py() < end


def test_money_is_exact_decimal() -> None:
    arr = g.money(np.array([1, -250, 123456789, 0]))
    assert arr.to_pylist() == [
        Decimal("0.01"),
        Decimal("-2.50"),
        Decimal("1234567.89"),
        Decimal("0.00"),
    ]


def test_today_is_cut_at_now_without_changing_earlier_rows(model: g.ShopModel) -> None:
    day = FIRST
    noon = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    full = g.orders_for_day(model, SEED, day, 1000, now=NOW)
    cut = g.orders_for_day(model, SEED, day, 1000, now=noon)
    assert 0 < cut.num_rows < full.num_rows
    assert pc.max(cut.column("order_date")).as_py() < noon
    assert pc.max(cut.column("updated_at")).as_py() <= noon
    head = full.slice(0, cut.num_rows)
    for name in ("order_id", "order_date", "customer_id", "product_id", "price", "total"):
        assert cut.column(name).equals(head.column(name)), name
    assert g.orders_for_day(model, SEED, day, 1000, now=day_start(day)).num_rows == 0


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def test_generate_orders_for_a_live_window(model: g.ShopModel) -> None:
    rng = np.random.Generator(np.random.PCG64(1))
    start = dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=dt.UTC)
    end = start + dt.timedelta(seconds=10)
    t = g.generate_orders(model, start, end, 50, rng, first_seq=1001)
    assert t.num_rows == 50 and t.schema.equals(g.ORDERS_SCHEMA)
    assert pc.min(t.column("order_date")).as_py() >= start
    assert pc.max(t.column("order_date")).as_py() < end
    assert t.column("order_id")[0].as_py() == "ORD-20240501-001001"
    with pytest.raises(ValueError):
        g.generate_orders(model, end, start, 5, rng)
    with pytest.raises(ValueError):
        g.generate_orders(model, start.replace(tzinfo=None), end, 5, rng)


# ------------------------------------------------------------------ defects
def rate(mask: np.ndarray) -> float:
    return float(np.mean(mask))


def test_defect_rates(model: g.ShopModel, history: pa.Table) -> None:
    n = history.num_rows
    assert n > 60_000
    price = money_cents(history, "price")
    total = money_cents(history, "total")
    qty = col(history, "quantity").astype(np.int64)
    status = history.column("status")
    tol = 4 * np.sqrt(0.03 / n)  # ~4 sigma of the largest rate
    assert abs(rate(price < 0) - 0.02) < tol
    assert abs(rate(qty == 0) - 0.01) < tol
    empty = pc.fill_null(pc.equal(status, ""), True).to_numpy(zero_copy_only=False)
    assert abs(rate(empty) - 0.01) < tol
    assert status.null_count > 0 and pc.sum(pc.equal(status, "")).as_py() > status.null_count
    # a wrong total is off by more than a cent from |price| * quantity
    wrong = np.abs(total - np.abs(price) * qty) > 1
    assert abs(rate(wrong) - 0.03) < tol
    missing = history.column("customer_id").is_null().to_numpy(zero_copy_only=False)
    assert 0.003 < rate(missing) < 0.008
    assert 0.0008 < rate(qty >= 500) < 0.004
    known = pc.is_in(history.column("product_id"), model.products.column("product_id"))
    assert 0.0015 < rate(~known.to_numpy(zero_copy_only=False)) < 0.006
    # defects do not overlap: a clean row has every value right
    clean = (price > 0) & (qty > 0) & (qty < 500) & ~empty & ~wrong
    assert rate(clean) > 0.91


def test_no_defects_when_disabled(model: g.ShopModel) -> None:
    rng = np.random.Generator(np.random.PCG64(3))
    start = day_start(FIRST)
    none = g.DefectRates(0, 0, 0, 0, 0, 0, 0)
    t = g.generate_orders(model, start, start + dt.timedelta(days=1), 5000, rng, defects=none)
    price, total = money_cents(t, "price"), money_cents(t, "total")
    qty = col(t, "quantity").astype(np.int64)
    assert np.all(price > 0) and np.all((qty >= 1) & (qty <= 10))
    assert np.array_equal(total, price * qty)
    assert t.column("customer_id").null_count == 0
    assert pc.all(
        pc.is_in(
            t.column("status"),
            pa.array(["completed", "processing", "pending", "cancelled", "returned"]),
        )
    ).as_py()


# ------------------------------------------------------------------ structure
def test_product_popularity_is_skewed(history: pa.Table) -> None:
    counts = np.sort(pc.value_counts(history.column("product_id")).field("counts").to_numpy())[::-1]
    top = counts[: max(1, len(counts) // 10)].sum() / counts.sum()
    assert top > 0.5  # uniform popularity would give 0.10


def test_segments_prefer_their_categories(model: g.ShopModel, history: pa.Table) -> None:
    seg = dict(
        zip(
            model.customers.column("customer_id").to_pylist(),
            model.customers.column("customer_segment").to_pylist(),
            strict=True,
        )
    )
    rows = history.select(["customer_id", "category"]).to_pylist()
    premium = [r["category"] for r in rows if seg.get(r["customer_id"]) == "Premium"]
    occasional = [r["category"] for r in rows if seg.get(r["customer_id"]) == "Occasional"]
    share = lambda xs, c: xs.count(c) / len(xs)  # noqa: E731
    pref = np.asarray(SEGMENT_CATEGORY_PREF)
    p, o = SEGMENTS.index("Premium"), SEGMENTS.index("Occasional")
    e, b = CATEGORIES.index("Electronics"), CATEGORIES.index("Books")
    assert pref[p, e] > pref[o, e] and pref[o, b] > pref[p, b]
    assert share(premium, "Electronics") > 1.5 * share(occasional, "Electronics")
    assert share(occasional, "Books") > 1.5 * share(premium, "Books")


def test_customers_have_a_personal_favourite_category(history: pa.Table) -> None:
    rows = history.select(["customer_id", "category"]).drop_null().to_pylist()
    per: dict[str, list[str]] = {}
    for r in rows:
        per.setdefault(r["customer_id"], []).append(r["category"])
    regulars = [cats for cats in per.values() if len(cats) >= 20]
    top_share = [max(cats.count(c) for c in set(cats)) / len(cats) for cats in regulars]
    assert len(regulars) > 100
    # PRIMARY_CATEGORY_SHARE of the orders plus what the segment's taste adds back
    assert float(np.median(top_share)) > 0.75


def test_repeat_buyers(history: pa.Table) -> None:
    counts = pc.value_counts(history.column("customer_id").drop_null()).field("counts").to_numpy()
    assert np.mean(counts >= 2) > 0.8
    assert counts.max() > 5 * np.median(counts)  # a few very loyal customers


def test_hour_of_day_rhythm(model: g.ShopModel) -> None:
    tz = "America/New_York"
    t = g.orders_for_day(model, SEED, dt.date(2024, 3, 6), 20_000, tz=tz, now=NOW)
    local = [ts.astimezone(ZoneInfo(tz)).hour for ts in t.column("order_date").to_pylist()]
    hist = np.bincount(local, minlength=24) / len(local)
    expected = np.asarray(HOUR_WEIGHTS) / np.sum(HOUR_WEIGHTS)
    assert np.abs(hist - expected).max() < 0.01
    assert hist[20] > 5 * hist[4]  # evening peak vs small hours


def test_weekday_effect(model: g.ShopModel) -> None:
    weeks = 8
    counts = np.zeros(7)
    for i in range(7 * weeks):
        day = FIRST + dt.timedelta(days=i)
        counts[day.weekday()] += g.orders_for_day(model, SEED, day, 1000, now=NOW).num_rows
    expected = np.asarray(WEEKDAY_WEIGHTS) / np.mean(WEEKDAY_WEIGHTS) * 1000 * weeks
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert counts[6] > counts[1] * 1.15  # Sunday beats Tuesday


def test_timestamps_consistent(history: pa.Table) -> None:
    od, ca, ua = (
        col(history, c).astype("datetime64[us]") for c in ("order_date", "created_at", "updated_at")
    )
    assert np.array_equal(od, ca)
    assert np.all(ua >= od)
    assert (history.column("status").to_pylist()[:1000].count("pending")) > 0


def test_customer_registration_before_history(model: g.ShopModel) -> None:
    reg = model.customers.column("registration_date")
    assert pc.max(reg).as_py() < FIRST
    segs = model.customers.column("customer_segment").to_pylist()
    shares = {s: segs.count(s) / len(segs) for s in SEGMENTS}
    assert shares["Regular"] > shares["Premium"] and all(v > 0.05 for v in shares.values())


def test_default_customer_count() -> None:
    assert g.default_customer_count(30 * 150) == 750
    assert g.default_customer_count(10) == 300
    assert g.default_customer_count(10**9) == 1_000_000
