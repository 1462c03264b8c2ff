"""The medallion job end to end on the real PostgreSQL and S3 (and a folder lake)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from jobs import medallion, seed, sql
from jobs.adapters.lake.base import spill_dir
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    GOLD_DATASETS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    STAGING_PREFIX,
    VALIDATION_REPORT,
    new_run_id,
    staging_key,
)
from jobs.bootstrap import lake_for
from jobs.domain import bronze as bronze_rows
from jobs.errors import ServiceUnavailable, UsageError
from jobs.settings import Settings

pytestmark = pytest.mark.integration
END = dt.date(2024, 3, 10)
DAY = END - dt.timedelta(days=1)
EMPTY_DAY = dt.date(2023, 1, 1)
METADATA = ("_ingested_at", "_run_id")


@pytest.fixture
def settings(pg_settings: Settings, s3_settings: Settings) -> Settings:
    """A fresh source database with two seeded days, and emptied S3 buckets."""
    seed.seed(pg_settings, days=2, orders_per_day=400, seed=7, end_date=END)
    return pg_settings


@pytest.fixture
def folder_lake_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"lake_uri": str(tmp_path / "lake")})


def rows(settings: Settings, dataset: Any, day: dt.date, drop: tuple[str, ...] = ()) -> list:
    table = lake_for(settings).read_table(dataset, day)
    return table.drop_columns([c for c in drop if c in table.column_names]).to_pylist()


def pg_gold(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The gold numbers computed independently by PostgreSQL over the source table."""
    valid = """
        order_date >= %(d)s::date AT TIME ZONE 'UTC'
        AND order_date < (%(d)s::date + 1) AT TIME ZONE 'UTC'
        AND nullif(trim(order_id), '') IS NOT NULL AND nullif(trim(customer_id), '') IS NOT NULL
        AND nullif(trim(status), '') IS NOT NULL AND quantity > 0 AND price IS NOT NULL"""
    with psycopg.connect(settings.dsn) as conn:
        daily = conn.execute(
            f"SELECT count(*), coalesce(sum(abs(price) * quantity), 0), coalesce(sum(quantity), 0),"
            f" count(DISTINCT customer_id) FROM orders WHERE {valid}",
            {"d": day},
        ).fetchone()
        cats = conn.execute(
            f"SELECT category, count(*), sum(abs(price) * quantity), sum(quantity) FROM orders "
            f"WHERE {valid} GROUP BY 1",
            {"d": day},
        ).fetchall()
        regs = conn.execute(
            f"SELECT region, count(*), sum(abs(price) * quantity) FROM orders "
            f"WHERE {valid} GROUP BY 1",
            {"d": day},
        ).fetchall()
        total = conn.execute(
            "SELECT count(*) FROM orders WHERE order_date >= %(d)s::date AT TIME ZONE 'UTC' "
            "AND order_date < (%(d)s::date + 1) AT TIME ZONE 'UTC'",
            {"d": day},
        ).fetchone()
    assert daily is not None and total is not None
    return {
        "daily": daily,
        "categories": sorted(cats, key=str),
        "regions": sorted(regs, key=str),
        "bronze": total[0],
    }


def test_run_matches_postgres_and_is_consistent(settings: Settings):
    report = medallion.run_date(settings, DAY).as_json()  # as the CLI prints it
    expected = pg_gold(settings, DAY)
    counts = report["counts"]
    assert counts["bronze"] == expected["bronze"] > 0
    assert counts["bronze"] == counts["silver"] + counts["rejected"]
    assert report["consistent"] and report["status"] in ("ok", "warn")
    assert sum(report["reject_reasons"].values()) == counts["rejected"]
    assert set(report["seconds"]) == {"extract", "silver", "gold", "validate"}

    (daily,) = rows(settings, GOLD_DATASETS["daily_summary"], DAY)
    n, revenue, quantity, customers = expected["daily"]
    assert (
        daily["total_orders"],
        daily["total_revenue"],
        daily["total_quantity"],
        daily["unique_customers"],
    ) == (n, revenue, quantity, customers)
    assert daily["date"] == DAY
    cats = rows(settings, GOLD_DATASETS["category_performance"], DAY)
    assert (
        sorted(
            ((c["category"], c["order_count"], c["revenue"], c["quantity_sold"]) for c in cats),
            key=str,
        )
        == expected["categories"]
    )
    regs = rows(settings, GOLD_DATASETS["regional_performance"], DAY)
    assert (
        sorted(((r["region"], r["order_count"], r["revenue"]) for r in regs), key=str)
        == expected["regions"]
    )

    lake = lake_for(settings)
    assert lake.exists(VALIDATION_REPORT.bucket, VALIDATION_REPORT.key(DAY))
    bronze = rows(settings, BRONZE_ORDERS, DAY)
    assert {r["_source"] for r in bronze} == {bronze_rows.SOURCE_NAME}
    assert all(r["_ingested_at"].utcoffset() == dt.timedelta(0) for r in bronze)


def test_rerun_gives_identical_output(settings: Settings):
    medallion.run_date(settings, DAY)
    first = {
        ds: rows(settings, ds, DAY, METADATA)
        for ds in (BRONZE_ORDERS, SILVER_ORDERS, REJECTED_ORDERS, *GOLD_DATASETS.values())
    }
    medallion.run_date(settings, DAY)
    second = {ds: rows(settings, ds, DAY, METADATA) for ds in first}
    assert second == first
    keys = lake_for(settings).list_keys("silver")
    assert sorted(keys) == [SILVER_ORDERS.key(DAY), REJECTED_ORDERS.key(DAY)]


def test_day_without_orders_gives_empty_partitions_and_zeros(settings: Settings):
    report = medallion.run_date(settings, EMPTY_DAY).as_json()
    assert report["counts"] == {"bronze": 0, "silver": 0, "rejected": 0}
    assert report["status"] == "ok"
    (daily,) = rows(settings, GOLD_DATASETS["daily_summary"], EMPTY_DAY)
    assert daily["total_orders"] == 0 and daily["total_revenue"] == Decimal("0.00")
    table = lake_for(settings).read_table(SILVER_ORDERS, EMPTY_DAY)
    assert table.num_rows == 0 and "_price_repaired" in table.column_names


@pytest.mark.parametrize("step", ["silver", "gold"])
def test_failure_mid_step_leaves_previous_output_intact(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, step: str
):
    medallion.run_date(settings, DAY)
    lake = lake_for(settings)
    outputs = [SILVER_ORDERS, REJECTED_ORDERS] if step == "silver" else list(GOLD_DATASETS.values())
    before = {ds: lake.get_bytes(ds.bucket, ds.key(DAY)) for ds in outputs}

    # one output of the step fails (the others are written: the silver file beside the
    # quarantine, the first two gold tables before the last)
    failing = outputs[-1]
    write = medallion.Pipeline._write

    def boom(con: Any, rel: Any, target: str) -> int:
        if f"/{failing.name}/" in target:
            raise RuntimeError("disk on fire")
        return write(con, rel, target)

    monkeypatch.setattr(medallion.Pipeline, "_write", staticmethod(boom))
    with pytest.raises(RuntimeError, match="disk on fire"):
        getattr(medallion, step)(settings, DAY)
    assert {ds: lake.get_bytes(ds.bucket, ds.key(DAY)) for ds in outputs} == before
    for bucket in ("silver", "gold"):
        assert lake.list_keys(bucket, STAGING_PREFIX) == []
    # nor on local disk, where an S3 lake stages
    assert [p for p in Path(spill_dir(), "staging").rglob("*") if p.is_file()] == []


def test_the_next_run_removes_what_a_killed_run_staged(settings: Settings):
    """A process killed mid-step cannot remove its staged files: the next step does."""
    lake = lake_for(settings)
    started = dt.datetime.now(dt.UTC) - medallion.STAGING_MAX_AGE - dt.timedelta(hours=1)
    left = {
        ds.bucket: staging_key(new_run_id(started), ds.key(DAY))
        for ds in (SILVER_ORDERS, GOLD_DATASETS["daily_summary"])
    }
    for bucket, key in left.items():
        lake.put_bytes(bucket, key, b"half a file")
    medallion.run_date(settings, DAY)
    for bucket, key in left.items():
        assert not lake.exists(bucket, key)
        assert lake.list_keys(bucket, STAGING_PREFIX) == []


def test_backfill_on_a_folder_lake_and_freshness(folder_lake_settings: Settings):
    reports = [r.as_json() for r in medallion.backfill(folder_lake_settings, DAY, END)]
    assert [r["date"] for r in reports] == [DAY.isoformat(), END.isoformat()]
    assert all(r["consistent"] for r in reports)
    line = medallion.freshness_line(folder_lake_settings)
    assert f"bronze {END}" in line and f"gold {END}" in line


def test_days_run_side_by_side_in_order_and_stop_at_a_failure(folder_lake_settings: Settings):
    days = [DAY + dt.timedelta(days=i) for i in range(6)]
    started: list[dt.date] = []
    finished: list[dt.date] = []
    beside_started, failed = threading.Event(), threading.Event()

    def step(p: medallion.Pipeline, day: dt.date) -> str:
        started.append(day)
        if day == days[2]:  # fails while the day beside it still runs
            assert beside_started.wait(10)
            failed.set()
            raise RuntimeError(f"broken {day}")
        if day == days[3]:
            beside_started.set()
            assert failed.wait(10)
            time.sleep(0.5)  # the failure is known to the scheduler before this day ends
        return day.isoformat()

    with pytest.raises(RuntimeError, match=f"broken {days[2]}"):
        medallion.for_each_day(
            folder_lake_settings, days, step, workers=2, done=lambda d, _: finished.append(d)
        )
    assert sorted(finished) == [days[0], days[1], days[3]]  # the day beside it finished
    assert sorted(started) == days[:4]  # and no day started once the failure was known
    # the results come in the order of the days, whatever order they finish in
    results = medallion.for_each_day(folder_lake_settings, days, step_ok, workers=2)
    assert results == [d.isoformat() for d in days]


def step_ok(p: medallion.Pipeline, day: dt.date) -> str:
    time.sleep(0.02 * (day.day % 3))  # later days may finish first
    return day.isoformat()


def test_sql_views_over_the_lake(settings: Settings):
    medallion.backfill(settings, DAY, END)
    result = sql.run_sql(settings, "SELECT date, total_orders FROM daily_summary ORDER BY date")
    assert [r[0] for r in result.rows] == [DAY, END]
    check = sql.run_sql(
        settings,
        """
        SELECT (SELECT count(*) FROM bronze_orders),
               (SELECT count(*) FROM silver_orders) + (SELECT count(*) FROM rejected_orders),
               (SELECT count(DISTINCT date) FROM silver_orders),
               (SELECT sum(order_count) FROM category_performance),
               (SELECT sum(order_count) FROM regional_performance),
               (SELECT sum(total_orders) FROM daily_summary)""",
    )
    bronze, bronze_again, days, by_cat, by_region, total = check.rows[0]
    assert bronze == bronze_again and days == 2 and by_cat == by_region == total
    assert "total_orders" in sql.render(result, "table")
    assert sql.render(result, "csv").splitlines()[0] == "date,total_orders"
    with pytest.raises(UsageError):
        sql.run_sql(settings, "SELEC nothing")


def test_sql_on_an_empty_lake_has_every_view(folder_settings: Settings):
    for view in ("bronze_orders", "silver_orders", "rejected_orders", *GOLD_DATASETS):
        result = sql.run_sql(folder_settings, f"SELECT * FROM {view}")
        assert result.rows == [] and "date" in result.columns


def test_unreachable_s3_and_bad_credentials_are_service_errors(settings: Settings):
    down = settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9"})
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        medallion.run_date(down, DAY)
    wrong = settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret-42")})
    with pytest.raises(ServiceUnavailable) as err:
        medallion.run_date(wrong, DAY)
    assert "not-the-secret-42" not in str(err.value)


def test_unreachable_postgres_is_a_service_error(s3_settings: Settings):
    down = s3_settings.model_copy(
        update={"source_dsn": "postgresql://nobody:pw-secret@127.0.0.1:9/x?connect_timeout=2"}
    )
    with pytest.raises(ServiceUnavailable) as err:
        medallion.extract(down, DAY)
    assert "pw-secret" not in str(err.value)


def test_every_source_order_lands_in_bronze_or_is_reported(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    """Orders with a NULL or infinite order_date reach bronze on the day of their last change
    and are quarantined as missing_order_date; a NaN price is quarantined, not a failed day;
    an order with no usable timestamp at all is counted and named in a warning."""
    noon = dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC)
    odd = [
        ("X-null-date", None, "5.00", noon),
        ("X-inf-date", "infinity", "5.00", noon),
        ("X-nan-price", noon, "NaN", noon),
        ("X-no-time", None, "5.00", None),
    ]
    with psycopg.connect(settings.dsn) as conn:
        for oid, when, price, changed in odd:
            conn.execute(
                "INSERT INTO orders (order_id, order_date, customer_id, product_id, price,"
                " quantity, total, status, created_at, updated_at)"
                " VALUES (%s, %s, 'C1', 'P1', %s, 1, %s, 'completed', %s, %s)",
                (oid, when, price, price, changed, changed),
            )
    with caplog.at_level("WARNING", logger="jobs.medallion"):
        report = medallion.run_date(settings, DAY).as_json()
    rejected = {r["order_id"]: r["_reject_reason"] for r in rows(settings, REJECTED_ORDERS, DAY)}
    assert rejected["X-null-date"] == rejected["X-inf-date"] == "missing_order_date"
    assert rejected["X-nan-price"] == "missing_price"
    assert "X-no-time" not in rejected
    assert report["source"] == {"undated": 2, "unplaceable_in_source": 1}
    assert "X-no-time" in caplog.text and "1 source orders have no usable" in caplog.text
    assert report["counts"]["bronze"] == report["counts"]["silver"] + report["counts"]["rejected"]
