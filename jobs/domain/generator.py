"""Synthetic shop data: customers, products and orders with structure and deliberate defects.

Pure and vectorised (numpy + pyarrow compute, no I/O). Everything derives from one
integer seed: the model from ``SeedSequence([seed, 0])`` and each day of history from
``SeedSequence([seed, 1, day.toordinal()])``, so a day's orders do not depend on which
other days are generated with it. Money is integer cents inside, ``decimal128(12,2)``
at the boundary; timestamps are UTC microseconds (``timestamp[us, tz=UTC]``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.domain.generator_catalog import (
    BRANDS,
    CATEGORIES,
    CATEGORY_ITEMS,
    CATEGORY_MEDIAN_PRICE,
    CATEGORY_QTY_P,
    CITIES,
    FIRST_NAMES,
    HOUR_WEIGHTS,
    LAST_NAMES,
    PAYMENT_METHODS,
    PAYMENT_WEIGHTS,
    PRIMARY_CATEGORY_SHARE,
    SEGMENT_ACTIVITY,
    SEGMENT_CATEGORY_PREF,
    SEGMENT_LTV_MEDIAN,
    SEGMENT_SHARES,
    SEGMENTS,
    STATUS_WEIGHTS,
    STATUSES,
    WEEKDAY_WEIGHTS,
)

US_PER_S = 1_000_000
MONEY = pa.decimal128(12, 2)
TS_UTC = pa.timestamp("us", tz="UTC")

ORDERS_SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("order_date", TS_UTC),
        pa.field("customer_id", pa.string()),
        pa.field("product_id", pa.string()),
        pa.field("category", pa.string()),
        pa.field("product_name", pa.string()),
        pa.field("price", MONEY),
        pa.field("quantity", pa.int32()),
        pa.field("total", MONEY),
        pa.field("status", pa.string()),
        pa.field("payment_method", pa.string()),
        pa.field("region", pa.string()),
        pa.field("created_at", TS_UTC),
        pa.field("updated_at", TS_UTC),
    ]
)
CUSTOMERS_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("customer_name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("phone", pa.string()),
        pa.field("registration_date", pa.date32()),
        pa.field("customer_segment", pa.string()),
        pa.field("lifetime_value", MONEY),
        pa.field("city", pa.string()),
        pa.field("country", pa.string()),
        pa.field("created_at", TS_UTC),
    ]
)
PRODUCTS_SCHEMA = pa.schema(
    [
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("product_name", pa.string()),
        pa.field("category", pa.string()),
        pa.field("base_price", MONEY),
        pa.field("stock_quantity", pa.int32()),
        pa.field("created_at", TS_UTC),
    ]
)


@dataclass(frozen=True)
class DefectRates:
    """Share of orders given each deliberate defect; the shares never overlap."""

    negative_price: float = 0.02
    zero_quantity: float = 0.01
    empty_status: float = 0.01
    wrong_total: float = 0.03
    missing_customer: float = 0.005
    absurd_quantity: float = 0.002
    unknown_product: float = 0.003

    def bounds(self) -> np.ndarray:
        """Cumulative upper bounds, in the field order above."""
        return np.cumsum(
            [
                self.negative_price,
                self.zero_quantity,
                self.empty_status,
                self.wrong_total,
                self.missing_customer,
                self.absurd_quantity,
                self.unknown_product,
            ]
        )


@dataclass(frozen=True)
class ShopModel:
    """Customers and products plus the hidden traits that drive who buys what."""

    customers: pa.Table
    products: pa.Table
    customer_segment: np.ndarray  # int index into SEGMENTS
    customer_activity: np.ndarray  # probability of being the buyer of an order
    customer_primary_category: np.ndarray  # int index into CATEGORIES
    customer_region: pa.Array  # region label per customer
    product_category: np.ndarray  # int index into CATEGORIES
    product_price_cents: np.ndarray
    product_popularity: np.ndarray  # Zipf-like weight per product


def money(cents: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Exact ``decimal128(12,2)`` from integer cents, without a per-value Python step."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension into the high 64 bits
    validity = None
    if mask is not None and mask.any():
        validity = pa.array(~mask).buffers()[1]
    return pa.Array.from_buffers(MONEY, len(cents), [validity, pa.py_buffer(words)])


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


def _seq_ids(prefix: str, n: int, width: int) -> pa.Array:
    nums = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, nums, "")


def _ts(values_us: np.ndarray) -> pa.Array:
    return pa.array(values_us.astype(np.int64), type=TS_UTC)


def to_us(ts: dt.datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = ts - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


def default_customer_count(total_orders: int) -> int:
    """About six orders per customer, within sensible bounds."""
    return int(min(1_000_000, max(300, total_orders // 6)))


def build_model(
    seed: int, n_customers: int = 1000, n_products: int = 500, reference: dt.date | None = None
) -> ShopModel:
    """Customers and products for ``seed``; everyone registered before ``reference``."""
    if n_customers < 1 or n_products < len(CATEGORIES):
        raise ValueError(f"need >= 1 customer and >= {len(CATEGORIES)} products")
    rng = _rng(seed, 0)
    ref = reference or dt.date(2025, 1, 1)
    customers, seg, activity, primary, region = _build_customers(rng, n_customers, ref)
    products, category, cents, popularity = _build_products(rng, n_products, ref)
    return ShopModel(
        customers=customers,
        products=products,
        customer_segment=seg,
        customer_activity=activity,
        customer_primary_category=primary,
        customer_region=region,
        product_category=category,
        product_price_cents=cents,
        product_popularity=popularity,
    )


def _build_customers(
    rng: np.random.Generator, n: int, ref: dt.date
) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    """The customers table and their hidden traits: segment, activity, favourite, region."""
    seg = rng.choice(len(SEGMENTS), n, p=SEGMENT_SHARES)
    # individual activity on top of the segment's rate: a few customers buy a lot
    activity = np.asarray(SEGMENT_ACTIVITY)[seg] * rng.lognormal(0.0, 0.6, n)
    activity /= activity.sum()
    pref = np.asarray(SEGMENT_CATEGORY_PREF)
    primary = np.empty(n, dtype=np.int64)
    for s in range(len(SEGMENTS)):
        idx = np.flatnonzero(seg == s)
        primary[idx] = rng.choice(len(CATEGORIES), len(idx), p=pref[s])
    first = pa.array(FIRST_NAMES).take(rng.integers(0, len(FIRST_NAMES), n))
    last = pa.array(LAST_NAMES).take(rng.integers(0, len(LAST_NAMES), n))
    city_i = rng.integers(0, len(CITIES), n)
    cities = pa.array([c[0] for c in CITIES]).take(city_i)
    countries = pa.array([c[1] for c in CITIES]).take(city_i)
    regions = pa.array([c[2] for c in CITIES]).take(city_i)
    # "New" customers registered in the last two months, the others up to four years ago
    age_days = np.where(
        seg == SEGMENTS.index("New"), rng.integers(1, 60, n), rng.integers(60, 1460, n)
    )
    reg_days = (ref - dt.date(1970, 1, 1)).days - age_days
    created_us = reg_days * 86_400 * US_PER_S + rng.integers(0, 86_400 * US_PER_S, n)
    ltv = np.round(np.asarray(SEGMENT_LTV_MEDIAN)[seg] * rng.lognormal(0.0, 0.5, n) * 100).astype(
        np.int64
    )
    ids = _seq_ids("CUST-", n, 6)
    nums = pa.array(np.arange(1, n + 1)).cast(pa.string())
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first), ".", pc.utf8_lower(last), nums, "@example.com", ""
    )
    phone = pc.binary_join_element_wise(
        "+1-555-",
        pc.utf8_lpad(pa.array(rng.integers(0, 10_000_000, n)).cast(pa.string()), 7, "0"),
        "",
    )
    table = pa.Table.from_arrays(
        [
            ids,
            pc.binary_join_element_wise(first, last, " "),
            email,
            phone,
            pa.array(reg_days.astype(np.int32), type=pa.date32()),
            pa.array(SEGMENTS).take(seg),
            money(ltv),
            cities,
            countries,
            _ts(created_us),
        ],
        schema=CUSTOMERS_SCHEMA,
    )
    return table, seg, activity, primary, regions


def _product_names(rng: np.random.Generator, cat: np.ndarray) -> list[str]:
    # brand x item per category, shuffled; a series number only once combinations run out
    names: list[str] = []
    pools: dict[int, list[str]] = {}
    for c in range(len(CATEGORIES)):
        pool = [f"{b} {i}" for b in BRANDS for i in CATEGORY_ITEMS[CATEGORIES[c]]]
        pools[c] = [pool[k] for k in rng.permutation(len(pool))]
    used = dict.fromkeys(range(len(CATEGORIES)), 0)
    for c in cat.tolist():
        k = used[c]
        pool = pools[c]
        base = pool[k % len(pool)]
        names.append(base if k < len(pool) else f"{base} {k // len(pool) + 1}")
        used[c] = k + 1
    return names


def _build_products(
    rng: np.random.Generator, n: int, ref: dt.date
) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """The products table and their category, price in cents and popularity."""
    # every category gets at least one product, the rest spread uniformly
    cat = np.concatenate(
        [np.arange(len(CATEGORIES)), rng.integers(0, len(CATEGORIES), n - len(CATEGORIES))]
    )
    cat = cat[rng.permutation(n)]
    median = np.asarray(CATEGORY_MEDIAN_PRICE)[cat]
    cents = np.maximum(99, np.round(median * rng.lognormal(0.0, 0.45, n) * 100 / 50) * 50 - 1)
    cents = cents.astype(np.int64)  # prices end in .49 or .99
    # Zipf-like: popularity rank r gets weight 1 / r^1.1, ranks shuffled across products
    rank = rng.permutation(n) + 1
    popularity = 1.0 / rank.astype(np.float64) ** 1.1
    days = (ref - dt.date(1970, 1, 1)).days - rng.integers(30, 1000, n)
    table = pa.Table.from_arrays(
        [
            _seq_ids("PROD-", n, 5),
            pa.array(_product_names(rng, cat)),
            pa.array(CATEGORIES).take(cat),
            money(cents),
            pa.array(rng.integers(0, 1000, n).astype(np.int32)),
            _ts(days * 86_400 * US_PER_S + rng.integers(0, 86_400 * US_PER_S, n)),
        ],
        schema=PRODUCTS_SCHEMA,
    )
    return table, cat, cents, popularity


# ------------------------------------------------------------------ orders
def _hour_bins(
    start_us: int, end_us: int, tz: ZoneInfo
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hour-long bins from ``start_us``: starts, lengths, rhythm weight and UTC offset each."""
    starts = np.arange(start_us, end_us, 3600 * US_PER_S, dtype=np.int64)
    lengths = np.minimum(starts + 3600 * US_PER_S, end_us) - starts
    weights = np.empty(len(starts))
    offsets = np.empty(len(starts), dtype=np.int64)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for i, s in enumerate(starts.tolist()):
        mid = (epoch + dt.timedelta(microseconds=s + int(lengths[i]) // 2)).astimezone(tz)
        weights[i] = HOUR_WEIGHTS[mid.hour] * WEEKDAY_WEIGHTS[mid.weekday()] * lengths[i]
        off = mid.utcoffset() or dt.timedelta(0)
        offsets[i] = int(off.total_seconds()) * US_PER_S
    return np.stack([starts, lengths]), weights, offsets


def _order_ids(ts_us: np.ndarray, offsets_us: np.ndarray, first_seq: int) -> pa.Array:
    """``ORD-YYYYMMDD-000123``: local date, then the order's rank within that local day."""
    local_day = (ts_us + offsets_us) // (86_400 * US_PER_S)
    starts = np.flatnonzero(np.r_[True, local_day[1:] != local_day[:-1]])
    seq = np.arange(len(ts_us)) - np.repeat(starts, np.diff(np.r_[starts, len(ts_us)])) + first_seq
    day_labels = pc.strftime(
        pa.array(local_day[starts].astype(np.int32), type=pa.date32()), format="%Y%m%d"
    )
    labels = day_labels.take(np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(ts_us)])))
    width = max(6, len(str(int(seq.max())))) if len(seq) else 6
    nums = pc.utf8_lpad(pa.array(seq).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise("ORD", labels, nums, "-")


def _pick_products(model: ShopModel, rng: np.random.Generator, cust: np.ndarray) -> np.ndarray:
    """Category from the customer's favourite or their segment's taste, then a popular product."""
    n = len(cust)
    cat = model.customer_primary_category[cust].copy()
    seg = model.customer_segment[cust]
    by_segment = rng.random(n) >= PRIMARY_CATEGORY_SHARE
    pref = np.asarray(SEGMENT_CATEGORY_PREF)
    for s in range(len(SEGMENTS)):
        idx = np.flatnonzero(by_segment & (seg == s))
        cat[idx] = rng.choice(len(CATEGORIES), len(idx), p=pref[s])
    prod = np.empty(n, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        idx = np.flatnonzero(cat == c)
        members = np.flatnonzero(model.product_category == c)
        weights = model.product_popularity[members]
        prod[idx] = members[rng.choice(len(members), len(idx), p=weights / weights.sum())]
    return prod


def _status_delay_us(rng: np.random.Generator, status: np.ndarray) -> np.ndarray:
    """How long after the order its last update happened, by status (hours)."""
    hours = np.select(
        [status == i for i in range(len(STATUSES))],
        [
            rng.uniform(0.5, 48, len(status)),  # completed
            rng.uniform(0.02, 6, len(status)),  # processing
            np.zeros(len(status)),  # pending
            rng.uniform(0.1, 24, len(status)),  # cancelled
            rng.uniform(24, 240, len(status)),  # returned
        ],
    )
    return (hours * 3600 * US_PER_S).astype(np.int64)


def generate_orders(
    model: ShopModel,
    start_ts: dt.datetime,
    end_ts: dt.datetime,
    n: int,
    rng: np.random.Generator,
    *,
    tz: str = "UTC",
    first_seq: int = 1,
    as_of: dt.datetime | None = None,
    defects: DefectRates | None = None,
) -> pa.Table:
    """``n`` orders in ``[start_ts, end_ts)`` sorted by time, following the hour/weekday rhythm.

    ``tz`` is the shop's local time zone: it shapes the daily rhythm and dates the order
    ids, whose per-day sequence starts at ``first_seq``. ``updated_at`` never passes
    ``as_of`` (default: no cap), so a seed of today has no updates from the future.
    """
    start_us, end_us = to_us(start_ts), to_us(end_ts)
    if end_us <= start_us:
        raise ValueError("end_ts must be after start_ts")
    bins, weights, offsets = _hour_bins(start_us, end_us, ZoneInfo(tz))
    b = rng.choice(len(weights), n, p=weights / weights.sum())
    ts = np.sort(bins[0][b] + (rng.random(n) * bins[1][b]).astype(np.int64))
    b = np.searchsorted(bins[0], ts, side="right") - 1  # bins again, now in time order

    cust = rng.choice(len(model.customer_activity), n, p=model.customer_activity)
    prod = _pick_products(model, rng, cust)
    discount = rng.choice([1.0, 0.9, 0.75], n, p=[0.8, 0.15, 0.05])
    price = np.round(model.product_price_cents[prod] * discount).astype(np.int64)
    qp = np.asarray(CATEGORY_QTY_P)[model.product_category[prod]]
    qty = np.minimum(rng.geometric(qp), 10).astype(np.int64)
    status = rng.choice(len(STATUSES), n, p=STATUS_WEIGHTS)
    pay = rng.choice(len(PAYMENT_METHODS), n, p=PAYMENT_WEIGHTS)
    updated = ts + _status_delay_us(rng, status)
    if as_of is not None:
        updated = np.maximum(np.minimum(updated, to_us(as_of)), ts)
    return _assemble(
        model,
        rng,
        defects or DefectRates(),
        ts,
        _order_ids(ts, offsets[b], first_seq),
        cust,
        prod,
        price,
        qty,
        status,
        pay,
        updated,
    )


def _assemble(
    model: ShopModel,
    rng: np.random.Generator,
    rates: DefectRates,
    ts: np.ndarray,
    ids: pa.Array,
    cust: np.ndarray,
    prod: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    status: np.ndarray,
    pay: np.ndarray,
    updated: np.ndarray,
) -> pa.Table:
    """Apply the deliberate defects and build the Arrow table."""
    n = len(ts)
    kind = np.searchsorted(rates.bounds(), rng.random(n), side="right")  # 7 = no defect
    total = price * qty
    price = np.where(kind == 0, -price, price)  # negative price; total keeps the true value
    zero = kind == 1
    qty = np.where(zero, 0, qty)
    total = np.where(zero, 0, total)
    wrong = kind == 3
    # off by 1-50 % either way, and always by more than a cent
    skew = (total * rng.uniform(0.01, 0.5, n) * rng.choice([-1, 1], n)).astype(np.int64)
    total = np.where(wrong, total + np.where(np.abs(skew) < 2, 100, skew), total)
    absurd = kind == 5
    qty = np.where(absurd, rng.integers(500, 2000, n), qty)
    total = np.where(absurd, price * qty, total)

    products = model.products
    unknown = kind == 6
    unknown_ids = pc.binary_join_element_wise(
        "PROD-X", pa.array(rng.integers(10_000, 99_999, n)).cast(pa.string()), ""
    )
    product_id = pc.if_else(
        unknown, unknown_ids, products.column("product_id").combine_chunks().take(prod)
    )
    product_name = pc.if_else(
        unknown,
        pc.binary_join_element_wise("Discontinued item ", unknown_ids, ""),
        products.column("product_name").combine_chunks().take(prod),
    )
    customer_id = (
        model.customers.column("customer_id").combine_chunks().take(pa.array(cust, mask=kind == 4))
    )
    # most empty statuses are '' and some are NULL, as real exports mix both
    empty = kind == 2
    status = np.where(empty, len(STATUSES), status)
    status_arr = pa.array([*STATUSES, ""]).take(
        pa.array(status, mask=empty & (rng.random(n) < 0.2))
    )
    created = _ts(ts)
    return pa.Table.from_arrays(
        [
            ids,
            created,
            customer_id,
            product_id,
            pa.array(CATEGORIES).take(model.product_category[prod]),
            product_name,
            money(price),
            pa.array(qty.astype(np.int32)),
            money(total),
            status_arr,
            pa.array(PAYMENT_METHODS).take(pay),
            model.customer_region.take(cust),
            created,
            _ts(updated),
        ],
        schema=ORDERS_SCHEMA,
    )


# ------------------------------------------------------------------ history by day
def day_window(day: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00, day+1 00:00)`` in ``tz``, as UTC datetimes (DST days are 23 or 25 h)."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(
        dt.UTC
    )
    return start, end


def daily_mean(orders_per_day: float, day: dt.date) -> float:
    """The model's mean order count for ``day``: the average day scaled by its weekday."""
    return orders_per_day * WEEKDAY_WEIGHTS[day.weekday()] / float(np.mean(WEEKDAY_WEIGHTS))


def expected_orders(
    orders_per_day: float, start_ts: dt.datetime, end_ts: dt.datetime, tz: str = "UTC"
) -> float:
    """How many orders the model expects in ``[start_ts, end_ts)``: the same hour and
    weekday rhythm as ``orders_for_day``, so a whole local day expects ``daily_mean``."""
    start_us, end_us = to_us(start_ts), to_us(end_ts)
    if end_us <= start_us:
        return 0.0
    _, weights, _ = _hour_bins(start_us, end_us, ZoneInfo(tz))
    per_weight = orders_per_day / float(np.mean(WEEKDAY_WEIGHTS)) / float(sum(HOUR_WEIGHTS))
    return float(weights.sum()) / (3600 * US_PER_S) * per_weight


def orders_for_day(
    model: ShopModel,
    seed: int,
    day: dt.date,
    orders_per_day: float,
    *,
    tz: str = "UTC",
    now: dt.datetime | None = None,
) -> pa.Table:
    """One local day of history: a Poisson count scaled by the weekday, from that day's stream.

    With ``now``, orders after it are dropped and no ``updated_at`` passes it. The kept
    rows and their ids equal those of the full day, so seeding today again later only
    adds the newer orders.
    """
    rng = _rng(seed, 1, day.toordinal())
    mean = daily_mean(orders_per_day, day)
    n = int(rng.poisson(mean)) if orders_per_day > 0 else 0
    start, end = day_window(day, tz)
    if n == 0 or (now is not None and now <= start):
        return ORDERS_SCHEMA.empty_table()
    table = generate_orders(model, start, end, n, rng, tz=tz, as_of=now)
    if now is not None and now < end:
        table = table.filter(pc.less(table.column("order_date"), pa.scalar(now, type=TS_UTC)))
    return table
