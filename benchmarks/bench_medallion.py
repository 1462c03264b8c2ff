"""Silver+gold throughput: DuckDB on S3 vs a pandas baseline on S3 vs DuckDB on a folder.

Every variant runs in its own subprocess, so its peak RSS (``ru_maxrss`` from
``wait4``) counts DuckDB's native memory too. All variants read the same bronze
objects and write the same silver/gold objects. Bronze days that are missing are
generated synthetically (deterministic, with SPEC's defects) straight into the lake.

    python -m benchmarks.bench_medallion --days 30 --rows-per-day 333334
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jobs.adapters.lake import FolderLake, Lake
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    DAILY_SUMMARY,
    GOLD_DATASETS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    Dataset,
)
from jobs.bootstrap import lake_for
from jobs.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS_PER_DAY = 333_334  # 30 days ~ 10 million rows

# One day of synthetic bronze, every "random" number a hash of (row, salt): deterministic
# whatever the thread count. ~2 % negative price, 1 % zero quantity, 1 % empty status,
# 3 % wrong total, 0.5 % missing customer, 0.5 % duplicate order id.
BRONZE_SQL = """
WITH r AS (
  SELECT i,
         (hash(i, {salt}, 1) % 10000) / 10000.0 AS r1, (hash(i, {salt}, 2) % 10000) / 10000.0 AS r2,
         (hash(i, {salt}, 3) % 10000) / 10000.0 AS r3, (hash(i, {salt}, 4) % 10000) / 10000.0 AS r4,
         (hash(i, {salt}, 5) % 10000) / 10000.0 AS r5, (hash(i, {salt}, 6) % 10000) / 10000.0 AS r6,
         CAST(hash(i, {salt}, 7) >> 1 AS BIGINT) AS h
  FROM range({n}) t(i)
), o AS (
  SELECT *, CAST(((h % 50000) + 100) / 100.0 AS DECIMAL(12,2))
                * CASE WHEN r3 < 0.02 THEN -1 ELSE 1 END AS price,
         CAST(CASE WHEN r4 < 0.01 THEN 0 ELSE 1 + h % 5 END AS INTEGER) AS quantity,
         TIMESTAMPTZ '{day} 00:00:00+00' + to_microseconds(CAST(i * 86400000000 // {n} AS BIGINT))
           AS ts
  FROM r
)
SELECT 'ORD-{compact}-' || lpad(CAST(CASE WHEN r1 < 0.005 AND i > 0 THEN i - 1 ELSE i END
                                     AS VARCHAR), 7, '0') AS order_id,
       ts AS order_date,
       CASE WHEN r2 < 0.005 THEN NULL ELSE 'CUST-' || lpad(CAST(h % 20000 AS VARCHAR), 5, '0') END
         AS customer_id,
       'PROD-' || lpad(CAST(h % 500 AS VARCHAR), 4, '0') AS product_id,
       ['Electronics', 'Clothing', 'Books', 'Home', 'Sports', 'Beauty', 'Toys', 'Food'][1 + h % 8]
         AS category,
       'Product ' || CAST(h % 500 AS VARCHAR) AS product_name,
       price, quantity,
       CAST(price * quantity + CASE WHEN r5 < 0.03 THEN 1 ELSE 0 END AS DECIMAL(12,2)) AS total,
       CASE WHEN r6 < 0.01 THEN ''
            ELSE ['completed', 'processing', 'shipped', 'cancelled'][1 + h % 4] END AS status,
       ['card', 'paypal', 'bank_transfer'][1 + h % 3] AS payment_method,
       ['North', 'South', 'East', 'West', 'Central'][1 + h % 5] AS region,
       ts AS created_at, ts + to_microseconds(CAST(h % 3600000000 AS BIGINT)) AS updated_at,
       TIMESTAMPTZ '{day} 23:59:59+00' AS _ingested_at, 'bench' AS _run_id,
       'synthetic' AS _source
FROM o
"""


def ensure_bronze(lake: Lake, days: list[dt.date], rows_per_day: int, force: bool = False) -> int:
    """Write synthetic bronze for every day that lacks it (or all, with ``force``)."""
    lake.check()
    con = lake.connect()
    written = 0
    try:
        for day in days:
            if lake.has(BRONZE_ORDERS, day) and not force:
                continue
            sql = BRONZE_SQL.format(
                salt=day.toordinal(),
                n=rows_per_day,
                day=day.isoformat(),
                compact=day.strftime("%Y%m%d"),
            )
            target = lake.writable_uri(BRONZE_ORDERS.bucket, BRONZE_ORDERS.key(day))
            con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
            written += 1
    finally:
        con.close()
    return written


def bronze_rows(lake: Lake, days: list[dt.date]) -> int:
    """Rows in the bronze partitions of ``days`` (from Parquet metadata)."""
    con = lake.connect()
    try:
        uris = [lake.dataset_uri(BRONZE_ORDERS, d) for d in days]
        row = con.execute("SELECT count(*) FROM read_parquet($u)", {"u": uris}).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def gold_totals(lake: Lake, days: list[dt.date]) -> dict[str, Any]:
    """Orders and revenue summed over the days' daily_summary (to compare implementations)."""
    con = lake.connect()
    try:
        uris = [lake.dataset_uri(DAILY_SUMMARY, d) for d in days]
        row = con.execute(
            "SELECT sum(total_orders), CAST(sum(total_revenue) AS DOUBLE) FROM read_parquet($u)",
            {"u": uris},
        ).fetchone()
        return {"orders": int(row[0]), "revenue": float(row[1])} if row else {}
    finally:
        con.close()


# ---- the baseline: a straightforward pandas implementation of the same rules ----
def _pd_read(lake: Lake, dataset: Dataset, day: dt.date) -> Any:
    import pandas as pd

    return pd.read_parquet(io.BytesIO(lake.get_bytes(dataset.bucket, dataset.key(day))))


def _pd_write(lake: Lake, dataset: Dataset, day: dt.date, df: Any) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    lake.put_bytes(dataset.bucket, dataset.key(day), buf.getvalue())


def pandas_silver(lake: Lake, day: dt.date) -> None:
    """Silver rules in pandas, money as float, as a seed-style job would write them."""
    import numpy as np
    import pandas as pd

    df = _pd_read(lake, BRONZE_ORDERS, day)
    price = df["price"].astype("float64")
    total = df["total"].astype("float64")

    def missing(col: str) -> Any:
        return df[col].isna() | (df[col].fillna("").str.strip() == "")

    latest_first = df.sort_values(
        ["updated_at", "created_at"], ascending=False, na_position="last", kind="stable"
    )
    latest_first = latest_first[~missing("order_id").loc[latest_first.index]]
    dup_index = latest_first.index[latest_first.duplicated("order_id", keep="first")]
    is_dup = pd.Series(df.index.isin(dup_index), index=df.index)
    rules = [
        ("missing_order_id", missing("order_id")),
        ("missing_customer_id", missing("customer_id")),
        ("missing_status", missing("status")),
        ("missing_order_date", df["order_date"].isna()),
        ("invalid_quantity", df["quantity"].isna() | (df["quantity"] <= 0)),
        ("missing_price", price.isna()),
        ("duplicate_order_id", is_dup),
    ]
    reason = np.select([m.to_numpy() for _, m in rules], [r for r, _ in rules], default="")
    bad = reason != ""
    rejected = df[bad].copy()
    rejected["_reject_reason"] = reason[bad]
    rejected["_reject_reasons"] = [[r for r, m in rules if m.loc[i]] for i in rejected.index]
    clean = df[~bad].copy()
    p = price[~bad]
    clean["price"] = p.abs()
    clean["total"] = (p.abs() * clean["quantity"]).round(2)
    clean["_price_repaired"] = p < 0
    src_total = total[~bad]
    clean["_total_mismatch"] = src_total.isna() | ((src_total - clean["total"]).abs() > 0.01)
    _pd_write(lake, SILVER_ORDERS, day, clean.sort_values("order_id"))
    _pd_write(lake, REJECTED_ORDERS, day, rejected)


def pandas_gold(lake: Lake, day: dt.date) -> None:
    """The three gold aggregates in pandas, read back from silver like the DuckDB job."""
    import pandas as pd

    s = _pd_read(lake, SILVER_ORDERS, day)
    n = len(s)
    revenue = float(s["total"].sum())
    daily = pd.DataFrame(
        [
            {
                "date": day,
                "total_orders": n,
                "total_revenue": revenue,
                "total_quantity": int(s["quantity"].sum()),
                "avg_order_value": round(revenue / n, 2) if n else 0.0,
                "unique_customers": s["customer_id"].nunique(),
            }
        ]
    )
    cat = (
        s.groupby("category", dropna=False)
        .agg(
            order_count=("order_id", "size"),
            revenue=("total", "sum"),
            quantity_sold=("quantity", "sum"),
        )
        .reset_index()
        .sort_values("revenue", ascending=False)
    )
    reg = (
        s.groupby("region", dropna=False)
        .agg(order_count=("order_id", "size"), revenue=("total", "sum"))
        .reset_index()
        .sort_values("revenue", ascending=False)
    )
    for name, frame in (
        ("daily_summary", daily),
        ("category_performance", cat),
        ("regional_performance", reg),
    ):
        frame.insert(0, "date", day) if "date" not in frame else None
        _pd_write(lake, GOLD_DATASETS[name], day, frame)


def _settings_env(settings: Settings) -> dict[str, str]:
    # handed over in the environment, never on the command line (no secret in `ps`)
    return {
        "SHOPLAKE_LAKE_URI": settings.lake_uri,
        "SHOPLAKE_S3_ENDPOINT": settings.s3_endpoint_url,
        "SHOPLAKE_S3_ACCESS_KEY": settings.s3_access_key,
        "SHOPLAKE_S3_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
        "SHOPLAKE_S3_REGION": settings.s3_region,
        "SHOPLAKE_TIMEZONE": settings.timezone,
    }


def _run_child(variant: str, settings: Settings, days: list[dt.date]) -> dict[str, Any]:
    """Run one variant in a subprocess; its JSON result plus its peak RSS."""
    env = {**os.environ, **_settings_env(settings), "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_medallion",
        "--child",
        variant,
        "--dates",
        ",".join(d.isoformat() for d in days),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark variant {variant} exited with {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
    return result


def _child(variant: str, days: list[dt.date]) -> dict[str, Any]:
    settings = Settings()
    t0 = time.perf_counter()
    if variant.startswith("duckdb"):
        from jobs import medallion

        with medallion.pipeline(settings) as p:
            for day in days:
                p.silver(day)
                p.gold(day)
    else:
        lake = lake_for(settings)
        for day in days:
            pandas_silver(lake, day)
            pandas_gold(lake, day)
    return {"variant": variant, "seconds": round(time.perf_counter() - t0, 3)}


def run(
    settings: Settings,
    days: list[dt.date],
    rows_per_day: int | None = None,
    variants: tuple[str, ...] = ("pandas", "duckdb", "duckdb-folder"),
) -> dict[str, Any]:
    """Silver+gold rows/s and peak memory per implementation over ``days`` of bronze.

    ``rows_per_day`` regenerates synthetic bronze of that size; None keeps the
    bronze already in the lake and only fills missing days (DEFAULT_ROWS_PER_DAY).
    """
    lake = lake_for(settings)
    generated = ensure_bronze(
        lake, days, rows_per_day or DEFAULT_ROWS_PER_DAY, force=rows_per_day is not None
    )
    rows = bronze_rows(lake, days)
    results: dict[str, Any] = {}
    folder: Path | None = None
    try:
        for variant in variants:
            target = settings
            if variant == "duckdb-folder":
                folder = Path(tempfile.mkdtemp(prefix="shoplake-bench-"))
                folder_lake = FolderLake(folder)
                folder_lake.check()
                for day in days:  # the very same bronze bytes, now on local disk
                    folder_lake.put_bytes(
                        "bronze",
                        BRONZE_ORDERS.key(day),
                        lake.get_bytes("bronze", BRONZE_ORDERS.key(day)),
                    )
                target = settings.model_copy(update={"lake_uri": str(folder)})
            res = _run_child("duckdb" if variant == "duckdb-folder" else variant, target, days)
            res["lake"] = "folder" if variant == "duckdb-folder" else lake.kind
            res["rows_per_s"] = round(rows / res["seconds"]) if res["seconds"] else None
            res["gold"] = gold_totals(lake_for(target), days)
            results[variant] = res
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return _summary(settings, days, rows, generated, results)


def _summary(
    settings: Settings, days: list[dt.date], rows: int, generated: int, results: dict[str, Any]
) -> dict[str, Any]:
    def ratio(a: str, b: str) -> float | None:
        if a in results and b in results and results[b]["seconds"]:
            return round(results[b]["seconds"] / results[a]["seconds"], 2)
        return None

    ref = results.get("duckdb", {}).get("gold")
    return {
        "benchmark": "medallion_silver_gold",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(),
        "lake": lake_for(settings).kind,
        "days": len(days),
        "first_day": days[0].isoformat(),
        "last_day": days[-1].isoformat(),
        "bronze_rows": rows,
        "bronze_days_generated": generated,
        "cpus": os.cpu_count(),
        # the machine may be shared: a high load average makes every number pessimistic
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "variants": results,
        "duckdb_vs_pandas": ratio("duckdb", "pandas"),
        "s3_overhead": ratio("duckdb-folder", "duckdb"),
        # same rules, same numbers (pandas uses floats, so revenue within a cent per row)
        "gold_matches": {
            k: v["gold"]["orders"] == ref["orders"]
            and abs(v["gold"]["revenue"] - ref["revenue"]) <= 0.01 * max(ref["orders"], 1)
            for k, v in results.items()
        }
        if ref
        else {},
        "targets": {"vs_pandas": 10, "rows_per_s": 3_000_000},
    }


def main() -> None:
    """Standalone run on the configured lake (``SHOPLAKE_*``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rows-per-day", type=int, default=None)
    ap.add_argument("--end-date", default="2024-01-30")
    ap.add_argument("--variants", default="pandas,duckdb,duckdb-folder")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dates", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        days = [dt.date.fromisoformat(d) for d in args.dates.split(",")]
        print(json.dumps(_child(args.child, days)))
        return
    end = dt.date.fromisoformat(args.end_date)
    days = [end - dt.timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    print(
        json.dumps(
            run(Settings(), days, args.rows_per_day, tuple(args.variants.split(","))), indent=2
        )
    )


if __name__ == "__main__":
    main()
