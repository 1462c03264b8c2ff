"""``make bench``: every benchmark in one isolated environment, results in benchmarks/results/.

The benchmarks get their own data dir and ports (so a running demo is not touched),
the native services are started once for all of them and stopped at the end, and
each benchmark runs as its own process (``python -m benchmarks.bench_X``), printing
its ratios against a baseline measured in the same run. A benchmark that prints its
result instead of writing a file has its last JSON document saved as ``<name>.json``.

    python -m benchmarks.run                    # all, at the issues' scales
    python -m benchmarks.run extract medallion  # some
    BENCH_QUICK=1 python -m benchmarks.run      # small scales, to check they work
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUICK = os.environ.get("BENCH_QUICK") == "1"

ENV = {
    "SHOPLAKE_DATA_DIR": str(ROOT / ".shoplake" / "bench"),
    "SHOPLAKE_PG_PORT": "25634",
    "SHOPLAKE_S3_PORT": "29200",
    "SHOPLAKE_S3_CONSOLE_PORT": "29201",
    "SHOPLAKE_REDIS_URL": "redis://127.0.0.1:26479/0",
    "SHOPLAKE_TRINO_PORT": "28188",
    "SHOPLAKE_KAFKA_PORT": "29292",
    "SHOPLAKE_KAFKA_CONTROLLER_PORT": "29293",
    "SHOPLAKE_CONNECT_PORT": "28283",
    "SHOPLAKE_FLINK_PORT": "28281",
    "SHOPLAKE_FLINK_RPC_PORT": "26323",
}

# name -> (arguments, file the benchmark writes itself or None for "save its stdout")
BENCHES: dict[str, tuple[list[str], str | None]] = {
    "extract": (
        ["--seed-days", "2" if QUICK else "30", "--orders-per-day", "20000" if QUICK else "333334"],
        "extract.json",
    ),
    "medallion": (  # issue 17's size: 10 M rows, 30 days
        ["--days", "2" if QUICK else "30", "--rows-per-day", "20000" if QUICK else "333334"],
        None,
    ),
    "dashboard": (
        ["--updates", "3" if QUICK else "30"] + (["--interval", "3"] if QUICK else []),
        "dashboard.json",
    ),
    "alerts": (["--duration", "10" if QUICK else "60"], None),
    "api": (["--duration", "5" if QUICK else "30"], "bench_api_f16.json"),
    "trino": (["--days", "3" if QUICK else "30", "--rows-per-day", "50000"], "trino.json"),
    "streaming": (["--duration", "10" if QUICK else "60"], None),
    "install": ([], "install.json"),
    "compose": (["--watch", "60" if QUICK else "180"], "compose.json"),
    "recommender": (["--tune-seconds", "10" if QUICK else "30"], "recommender.json"),
}


def _last_json(text: str) -> dict | None:
    """The last top-level JSON object printed (benchmarks print progress lines before it)."""
    start = text.rfind("\n{")
    start = 0 if start < 0 and text.startswith("{") else start + 1
    try:
        return json.loads(text[start:])
    except ValueError:
        return None


SERVICES = ["postgres", "s3", "redis"]
# started only around the benchmark that needs them: an idle JVM beside the others is noise
# (Trino idles at 0.7 GB and wakes up every few seconds)
ONLY_FOR: dict[str, list[str]] = {"trino": ["trino"]}
# started by the streaming benchmark itself, stopped here with the rest
STREAMING = ["kafka", "connect", "flink-jobmanager", "flink-taskmanager"]


def _services(action: str, env: dict[str, str], names: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "lite.cli", "services", action, *names],
        cwd=ROOT,
        env=env,
        check=action == "start",
    )


def main(names: list[str]) -> int:
    """Run the selected benchmarks; non-zero if any failed."""
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (choose {', '.join(BENCHES)})")
        return 2
    # the benchmark defaults, unless the caller chose (e.g. other ports on a busy machine)
    env = {**ENV, **os.environ}
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    _services("start", env, SERVICES)
    try:
        for name in names or list(BENCHES):
            args, writes = BENCHES[name]
            print(f"== {name}: python -m benchmarks.bench_{name} {' '.join(args)}", flush=True)
            t0 = time.perf_counter()
            extra = ONLY_FOR.get(name, [])
            if extra:
                _services("start", env, extra)
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", f"benchmarks.bench_{name}", *args],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            finally:
                if extra:
                    _services("stop", env, extra)
            sys.stdout.write(proc.stdout)
            result = _last_json(proc.stdout)
            if proc.returncode != 0:
                failed.append(name)
            elif writes is None and result is not None:
                (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
            print(
                f"== {name}: exit {proc.returncode} in {time.perf_counter() - t0:.0f} s", flush=True
            )
    finally:
        _services("stop", env, [*SERVICES, *STREAMING])
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
