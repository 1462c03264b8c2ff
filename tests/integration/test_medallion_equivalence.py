"""The faster silver (issue 17) publishes the same lake as the rules it replaced.

Bronze: a day of the benchmark's synthetic orders (duplicates, negative prices, zero
quantities, empty statuses, wrong totals, missing customers) plus hand-made rows for every
reject reason, several reasons at once, exact-tie duplicates, ties broken by each column and
duplicates whose latest version is invalid. The pipeline's outputs (silver, quarantine, the
three gold tables) are compared with what ``tests/reference_silver.py`` (the old rules: the
window over every row, silver sorted by ``order_id``) and the gold rules give on that bronze.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from benchmarks.bench_medallion import BRONZE_SQL
from jobs.adapters.lake import FolderLake
from jobs.adapters.lake.layout import BRONZE_ORDERS, GOLD_DATASETS, REJECTED_ORDERS, SILVER_ORDERS
from jobs.bootstrap import MedallionConfig
from jobs.domain import gold as gold_rules
from jobs.domain import silver as silver_rules
from jobs.domain.reports import Thresholds
from jobs.medallion import Pipeline
from tests import reference_silver
from tests.orders_data import NOON, order, orders_table, with_metadata

DAY = dt.date(2024, 3, 5)
HOUR = dt.timedelta(hours=1)
CONFIG = MedallionConfig(dsn="", timezone="UTC", thresholds=Thresholds(warn=0.1, fail=0.5))


def hand_rows() -> list[dict[str, Any]]:
    rows = [
        order(1),
        order(2, order_id=None),
        order(3, order_id=""),
        order(4, order_id="  "),
        order(5, customer_id=None),
        order(6, customer_id=" "),
        order(7, status=""),
        order(8, status=None),
        order(9, order_date=None),
        order(10, quantity=0, total=Decimal("0")),
        order(11, quantity=None, total=None),
        order(12, price=None, total=None),
        order(13, customer_id=None, quantity=-1, status=" ", price=None),
        order(14, price=Decimal("-5.00"), total=Decimal("7.00")),
    ]
    # duplicates: later updated_at wins, NULL updated_at loses, the latest version invalid
    rows += [order(20, updated_at=NOON), order(20, status="shipped", updated_at=NOON + HOUR)]
    rows += [order(21, updated_at=None), order(21, status="cancelled")]
    rows += [order(22, updated_at=NOON), order(22, quantity=0, updated_at=NOON + HOUR)]
    # exact ties (identical rows, three of them) and ties broken by one column each
    rows += [order(30)] * 3
    for n, (col, a, b) in enumerate(
        [
            ("created_at", NOON, NOON + HOUR),
            ("customer_id", "CUST-A", "CUST-B"),
            ("product_id", "PROD-A", "PROD-B"),
            ("category", "Books", "Home"),
            ("product_name", "A", "B"),
            ("price", Decimal("1.00"), Decimal("2.00")),
            ("quantity", 1, 3),
            ("total", Decimal("1.00"), Decimal("9.00")),
            ("status", "completed", "shipped"),
            ("payment_method", "card", "paypal"),
            ("region", "East", "West"),
            ("order_date", NOON, NOON + HOUR),
            ("created_at", None, NOON),
        ]
    ):
        rows += [order(40 + n, **{col: b}), order(40 + n, **{col: a})]
    # repeated missing ids are not duplicates of each other; an invalid row among duplicates
    rows += [order(60, order_id=None), order(61, order_id=None), order(62, order_id="")]
    rows += [order(70, customer_id=None), order(70), order(70, updated_at=NOON + HOUR)]
    # the repaired total's two multiplications: 64-bit up to |quantity| 999,999, 128-bit above
    big = Decimal("9999999999.99")
    rows += [
        order(80, price=big, quantity=999_999, total=Decimal("0.00")),
        order(81, price=-big, quantity=1_000_000, total=Decimal("1.00")),
        order(82, price=big, quantity=2_147_483_647, total=big),
        order(83, price=Decimal("-123.45"), quantity=-1_000_000, total=Decimal("1.00")),
        order(84, price=Decimal("0.01"), quantity=1_000_001, total=Decimal("10000.01")),
    ]
    return rows


@pytest.fixture
def lake(tmp_path: Path) -> FolderLake:
    lake = FolderLake(tmp_path / "lake")
    lake.check()
    con = lake.connect()
    con.execute("SET TimeZone = 'UTC'")
    hand = con.from_arrow(with_metadata(orders_table(hand_rows())))  # noqa: F841 (used in SQL)
    generated = BRONZE_SQL.format(
        salt=7, n=30_000, day=DAY.isoformat(), compact=DAY.strftime("%Y%m%d")
    )
    target = lake.writable_uri(BRONZE_ORDERS.bucket, BRONZE_ORDERS.key(DAY))
    con.execute(
        f"COPY (SELECT * FROM ({generated}) UNION ALL BY NAME SELECT * FROM hand) "
        f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
    )
    con.close()
    return lake


def sorted_rows(rel: duckdb.DuckDBPyRelation) -> list[tuple[Any, ...]]:
    return sorted(rel.fetchall(), key=repr)


def test_pipeline_outputs_equal_the_old_rules(lake: FolderLake):
    pipeline = Pipeline(lake, CONFIG)
    try:
        silver = pipeline.silver(DAY)
        pipeline.gold(DAY)
    finally:
        pipeline.close()

    con = lake.connect()
    con.execute("SET TimeZone = 'UTC'")
    bronze = con.read_parquet(lake.dataset_uri(BRONZE_ORDERS, DAY))
    classified = reference_silver.classify(bronze)
    want_clean = reference_silver.clean(classified)
    want_rejected = reference_silver.rejected(classified)
    got_clean = con.read_parquet(lake.dataset_uri(SILVER_ORDERS, DAY))
    got_rejected = con.read_parquet(lake.dataset_uri(REJECTED_ORDERS, DAY))

    # the data has what the test is about
    reasons = dict(want_rejected.aggregate("_reject_reason, count(*)").fetchall())
    assert set(reasons) == set(reference_silver.REJECT_REASONS)
    assert reasons["duplicate_order_id"] > 100
    assert silver.rejected == sum(reasons.values()) and silver.silver > 29_000

    assert got_clean.columns == want_clean.columns and got_clean.types == want_clean.types
    assert sorted_rows(got_clean) == sorted_rows(want_clean)
    # the quarantine is sorted by every column in both: the very same list of rows
    assert got_rejected.columns == want_rejected.columns
    assert got_rejected.fetchall() == want_rejected.fetchall()
    # the relation form of the rules (the SQL views, the dashboard) agrees as well (on its
    # own connection: relations built by .query() resolve their aliases when they run)
    other = lake.connect()
    other.execute("SET TimeZone = 'UTC'")
    relational = silver_rules.classify(other.read_parquet(lake.dataset_uri(BRONZE_ORDERS, DAY)))
    assert sorted_rows(silver_rules.clean(relational)) == sorted_rows(want_clean)
    assert silver_rules.rejected(relational).fetchall() == want_rejected.fetchall()
    other.close()
    for name, aggregate in gold_rules.GOLD_TABLES.items():
        got = con.read_parquet(lake.dataset_uri(GOLD_DATASETS[name], DAY))
        want = aggregate(want_clean, DAY)
        assert got.columns == want.columns and got.types == want.types
        assert got.fetchall() == want.fetchall(), name
    con.close()


def test_gold_from_the_lake_equals_gold_from_the_silver_step(lake: FolderLake):
    """gold() in a fresh pipeline (the DAG's task) reads silver back from the lake; it
    publishes the same bytes as gold() right after silver() in one pipeline (run_date)."""
    outputs: list[dict[str, bytes]] = []
    for fused in (True, False):
        first = Pipeline(lake, CONFIG)
        try:
            first.silver(DAY)
            if fused:
                first.gold(DAY)
        finally:
            first.close()
        if not fused:
            second = Pipeline(lake, CONFIG)
            try:
                second.gold(DAY)
            finally:
                second.close()
        outputs.append(
            {d.name: lake.get_bytes(d.bucket, d.key(DAY)) for d in GOLD_DATASETS.values()}
        )
    assert outputs[0] == outputs[1]
