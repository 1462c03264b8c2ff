"""Trino vs DuckDB on one lake: typical gold and silver queries, end to end as ``shoplake sql``.

Both engines answer through ``jobs.sql.run_sql`` (DuckDB: views over the Parquet, built per
query as the CLI does; Trino: the registered tables and views), so each timing is what a
user waits for. Synthetic bronze (benchmarks.bench_medallion) goes through the real silver
and gold steps first. Trino's memory is its JVM's RSS, sampled during the queries.

    python -m benchmarks.bench_trino --days 30 --rows-per-day 50000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.bench_medallion import ensure_bronze
from jobs import medallion, sql
from jobs.adapters import trino_tables
from jobs.adapters.lake.layout import DAILY_SUMMARY
from jobs.bootstrap import lake_for
from jobs.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "trino.json"
LAST_DAY = dt.date(2023, 12, 31)  # far from the seeded "recent" days other runs use
QUERIES = {
    "gold_daily_summary": "SELECT * FROM daily_summary ORDER BY date",
    "gold_category_revenue": "SELECT category, sum(revenue) AS revenue, sum(order_count) AS n "
    "FROM category_performance GROUP BY category ORDER BY revenue DESC",
    "gold_region_month": "SELECT region, CAST(date_trunc('month', date) AS DATE) AS month, "
    "sum(revenue) AS r "
    "FROM regional_performance GROUP BY 1, 2 ORDER BY 1, 2",
    "silver_daily_totals": "SELECT date, count(*) AS n, sum(total) AS revenue FROM silver_orders "
    "GROUP BY date ORDER BY date",
    "silver_category_region": "SELECT category, region, count(*) AS n, sum(total) AS revenue, "
    "sum(quantity) AS qty FROM silver_orders GROUP BY 1, 2 ORDER BY 1, 2",
    "silver_top_customers": "SELECT customer_id, sum(total) AS spent FROM silver_orders "
    "GROUP BY 1 ORDER BY spent DESC, customer_id LIMIT 10",
    "silver_one_day_filter": "SELECT status, count(*) AS n FROM silver_orders WHERE date = DATE "
    f"'{LAST_DAY}' AND quantity > 2 GROUP BY 1 ORDER BY 1",
}


def prepare(settings: Settings, days: int, rows_per_day: int) -> dict[str, Any]:
    """Synthetic bronze -> silver -> gold for the missing days; then every table registered."""
    lake = lake_for(settings)
    span = [LAST_DAY - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    t0 = time.perf_counter()
    written = ensure_bronze(lake, span, rows_per_day)
    todo = [d for d in span if written or not lake.has(DAILY_SUMMARY, d)]
    with medallion.pipeline(settings) as p:
        for day in todo:
            p.silver(day)
            p.gold(day)
    reg = trino_tables.register(settings, lake_for(settings))
    return {
        "days": days,
        "rows_per_day": rows_per_day,
        "days_processed": len(todo),
        "prepare_s": round(time.perf_counter() - t0, 1),
        "register_s": reg["seconds"],
    }


class RssSampler:
    """The peak RSS of one process, sampled every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _time(settings: Settings, query: str, engine: str, repeat: int) -> tuple[float, Any]:
    result = sql.run_sql(settings, query, engine=engine)  # warm-up (JIT, caches, metadata)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sql.run_sql(settings, query, engine=engine)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), result


def run(
    settings: Settings, days: int = 30, rows_per_day: int = 50_000, repeat: int = 3
) -> dict[str, Any]:
    """Each query on both engines (median of ``repeat`` after a warm-up), ratio, Trino RSS."""
    from lite.services.trino import Trino

    pid = Trino(settings).pid()
    if pid is None:
        raise SystemExit("Trino is not running: shoplake services start --full")
    setup = prepare(settings, days, rows_per_day)
    rss_before = psutil.Process(pid).memory_info().rss
    queries: dict[str, Any] = {}
    with RssSampler(pid) as rss:
        for name, query in QUERIES.items():
            duck_s, duck = _time(settings, query, "duckdb", repeat)
            trino_s, tri = _time(settings, query, "trino", repeat)
            queries[name] = {
                "duckdb_s": round(duck_s, 4),
                "trino_s": round(trino_s, 4),
                "trino_over_duckdb": round(trino_s / duck_s, 2),
                "same_rows": _same(duck.rows, tri.rows),
                "rows": len(duck.rows),
            }
    ratios = [q["trino_over_duckdb"] for q in queries.values()]
    return {
        "setup": setup,
        "repeat": repeat,
        "queries": queries,
        "geomean_trino_over_duckdb": round(statistics.geometric_mean(ratios), 2),
        "trino_rss_gb": {
            "before": round(rss_before / 2**30, 2),
            "peak": round(rss.peak / 2**30, 2),
        },
        "host": {
            "cpus": psutil.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30),
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    # float sums may differ in the last bits between engines; everything else must be equal
    def norm(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]

    return norm(a) == norm(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from lite.services import manager

    settings = Settings()
    t0 = time.perf_counter()
    started = manager.start(settings, ["postgres", "s3", "trino"])
    start_s = round(time.perf_counter() - t0, 1)
    result = run(settings, args.days, args.rows_per_day, args.repeat)
    result["services"] = {st.name: st.detail for st in started}
    result["services_start_s"] = start_s
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
