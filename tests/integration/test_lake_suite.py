"""One behaviour suite for every lake backend: a local folder and the real S3 (MinIO)."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.adapters.lake import Lake, parquet_bytes
from jobs.adapters.lake.folder import FolderLake
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    DAILY_SUMMARY,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    STAGING_PREFIX,
    new_run_id,
    staging_key,
)
from jobs.bootstrap import lake_for
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from tests.orders_data import DAY, order, orders_table, with_metadata

pytestmark = pytest.mark.integration
D2 = DAY + dt.timedelta(days=1)


@pytest.fixture(params=["folder", "s3"])
def lake(request: pytest.FixtureRequest) -> Lake:
    settings: Settings = request.getfixturevalue(f"{request.param}_settings")
    lake = lake_for(settings)
    assert lake.kind == request.param
    lake.check()
    return lake


def numbers(n: int, value: int = 0) -> pa.Table:
    return pa.table({"x": pa.array([value] * n, pa.int64())})


def test_put_get_roundtrip_and_overwrite(lake: Lake):
    lake.put_bytes("gold", "a/b.bin", b"one")
    assert lake.get_bytes("gold", "a/b.bin") == b"one"
    lake.put_bytes("gold", "a/b.bin", b"two")
    assert lake.get_bytes("gold", "a/b.bin") == b"two"
    assert lake.exists("gold", "a/b.bin")


def test_missing_object(lake: Lake):
    assert not lake.exists("silver", "nope/x")
    with pytest.raises(FileNotFoundError):
        lake.get_bytes("silver", "nope/x")
    lake.delete("silver", "nope/x")  # deleting nothing is fine


def test_modified_is_the_last_write_in_utc(lake: Lake):
    assert lake.modified("gold", "never/written.bin") is None
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=2)
    lake.put_bytes("gold", "stamp/a.bin", b"one")
    first = lake.modified("gold", "stamp/a.bin")
    assert first is not None and first.utcoffset() == dt.timedelta(0)
    assert before <= first <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    time.sleep(1.1)  # S3 keeps whole seconds
    lake.put_bytes("gold", "stamp/a.bin", b"two")
    second = lake.modified("gold", "stamp/a.bin")
    assert second is not None and second > first


def test_layout_and_partitions(lake: Lake):
    for day in (D2, DAY):
        lake.write_table(SILVER_ORDERS, day, numbers(1))
    lake.write_table(REJECTED_ORDERS, DAY, numbers(1))
    assert lake.list_keys("silver", "orders/") == [
        f"orders/date={DAY}/data.parquet",
        f"orders/date={D2}/data.parquet",
    ]
    assert lake.partitions(SILVER_ORDERS) == [DAY, D2]  # orders_rejected is another dataset
    assert lake.partitions(REJECTED_ORDERS) == [DAY]
    assert lake.partitions(DAILY_SUMMARY) == []
    uri = lake.dataset_uri(SILVER_ORDERS, DAY)
    assert uri.endswith(f"silver/orders/date={DAY}/data.parquet")


def test_table_roundtrip_keeps_decimals_and_utc(lake: Lake):
    table = with_metadata(orders_table([order(1), order(2)]))
    lake.write_table(BRONZE_ORDERS, DAY, table)
    back = lake.read_table(BRONZE_ORDERS, DAY)
    assert back.schema.field("price").type == pa.decimal128(12, 2)
    assert back.schema.field("order_date").type == pa.timestamp("us", tz="UTC")
    assert back.equals(table)


def test_rewrite_replaces_exactly_that_day(lake: Lake):
    lake.write_table(SILVER_ORDERS, DAY, numbers(3, 1))
    lake.write_table(SILVER_ORDERS, D2, numbers(2, 2))
    lake.write_table(SILVER_ORDERS, DAY, numbers(5, 9))
    assert lake.read_table(SILVER_ORDERS, DAY).equals(numbers(5, 9))
    assert lake.read_table(SILVER_ORDERS, D2).equals(numbers(2, 2))
    assert len(lake.list_keys("silver")) == 2


def no_staging_left(lake: Lake, bucket: str) -> bool:
    """Nothing under ``_staging/``; on a folder lake, not even empty folders."""
    if lake.list_keys(bucket, STAGING_PREFIX):
        return False
    if not isinstance(lake, FolderLake):
        return True
    staging = lake.root / bucket / STAGING_PREFIX
    return not (staging.is_dir() and any(staging.iterdir()))


def test_staged_outputs_appear_together_on_success(lake: Lake):
    lake.write_table(SILVER_ORDERS, DAY, numbers(1, 1))
    with lake.staged("run1") as stage:
        stage.put_table(SILVER_ORDERS, DAY, numbers(2, 2))
        stage.put_table(REJECTED_ORDERS, DAY, numbers(1, 2))
        # nothing published yet: readers still see the previous output
        assert lake.read_table(SILVER_ORDERS, DAY).equals(numbers(1, 1))
        assert not lake.has(REJECTED_ORDERS, DAY)
    assert lake.read_table(SILVER_ORDERS, DAY).equals(numbers(2, 2))
    assert lake.read_table(REJECTED_ORDERS, DAY).equals(numbers(1, 2))
    assert no_staging_left(lake, "silver")


def test_failed_step_leaves_previous_outputs_and_no_staging(lake: Lake):
    lake.write_table(SILVER_ORDERS, DAY, numbers(1, 1))
    lake.write_table(REJECTED_ORDERS, DAY, numbers(1, 1))
    with pytest.raises(RuntimeError, match="boom"), lake.staged("run2") as stage:
        stage.put_table(SILVER_ORDERS, DAY, numbers(7, 7))
        raise RuntimeError("boom")
    assert lake.read_table(SILVER_ORDERS, DAY).equals(numbers(1, 1))
    assert lake.read_table(REJECTED_ORDERS, DAY).equals(numbers(1, 1))
    assert no_staging_left(lake, "silver")


def test_sweep_staging_removes_only_what_old_runs_left(lake: Lake):
    now = dt.datetime.now(dt.UTC)
    killed = staging_key(new_run_id(now - dt.timedelta(hours=30)), SILVER_ORDERS.key(DAY))
    live = staging_key(new_run_id(now - dt.timedelta(minutes=5)), SILVER_ORDERS.key(DAY))
    foreign = f"{STAGING_PREFIX}/someone-else/{SILVER_ORDERS.key(DAY)}"
    for key in (killed, live, foreign):
        lake.put_bytes("silver", key, b"partial")
    lake.write_table(SILVER_ORDERS, DAY, numbers(1))
    try:
        assert lake.sweep_staging("silver", dt.timedelta(hours=24)) == [killed]
        assert lake.list_keys("silver", STAGING_PREFIX) == sorted([live, foreign])
        assert lake.read_table(SILVER_ORDERS, DAY).equals(numbers(1))
        assert lake.sweep_staging("silver", dt.timedelta(minutes=1)) == [live]
    finally:
        for key in (live, foreign):
            lake.delete("silver", key)
    assert no_staging_left(lake, "silver")


def test_duckdb_reads_and_copies_through_staging(lake: Lake):
    lake.write_table(BRONZE_ORDERS, DAY, with_metadata(orders_table([order(1), order(2)])))
    lake.write_table(BRONZE_ORDERS, D2, with_metadata(orders_table([order(3)])))
    con = lake.connect()
    rel = con.read_parquet(lake.dataset_uri(BRONZE_ORDERS, DAY))
    with lake.staged() as stage:
        rel.project("order_id").write_parquet(stage.target(SILVER_ORDERS, DAY))
    assert lake.read_table(SILVER_ORDERS, DAY).column("order_id").to_pylist() == [
        "ORD-000001",
        "ORD-000002",
    ]
    # Hive partitioning turns date= into a DATE column across partitions
    rows = con.execute(
        f"SELECT date, count(*) FROM read_parquet('{lake.glob_uri(BRONZE_ORDERS)}', "
        "hive_partitioning = true) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [(DAY, 2), (D2, 1)]


def test_reader_never_sees_a_partial_file(lake: Lake):
    versions = [parquet_bytes(numbers(200_000, v)) for v in range(3)]
    key = SILVER_ORDERS.key(DAY)
    lake.put_bytes("silver", key, versions[0])
    seen: list[int] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                table = pq.read_table(io.BytesIO(lake.get_bytes("silver", key)))
                assert table.num_rows == 200_000
                seen.append(table.column("x")[0].as_py())
            except Exception as exc:  # a torn file would fail to parse
                failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        i = 0
        while time.monotonic() < deadline:
            i += 1
            lake.put_bytes("silver", key, versions[i % 3])
    finally:
        stop.set()
        thread.join()
    assert not failures
    assert seen and set(seen) <= {0, 1, 2}


def test_s3_unreachable_is_one_clear_line(s3_settings: Settings):
    bad = s3_settings.model_copy(update={"s3_endpoint": "http://127.0.0.1:9"})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="unreachable") as err:
        lake_for(bad).check()
    assert time.monotonic() - started < 30
    assert "\n" not in str(err.value)


def test_s3_wrong_credentials_named_without_the_secret(s3_settings: Settings):
    secret = "definitely-wrong-secret-123"
    from pydantic import SecretStr

    bad = s3_settings.model_copy(update={"s3_secret_key": SecretStr(secret)})
    with pytest.raises(ServiceUnavailable, match="credentials") as err:
        lake_for(bad).check()
    assert secret not in str(err.value)
    assert secret not in repr(lake_for(bad))
