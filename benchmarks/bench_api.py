"""The recommendation API under wrk: cache hits, cache misses, /similar, and a seed-style baseline.

A model is trained on 5,000 customers x 2,000 products from the project's generator and put
in a throw-away local registry; a native Redis runs on a spare loopback port; the API runs
under uvicorn with one worker, as ``shoplake serve`` does. The seed-style implementation
(pure-Python loops over every item per request, no cache) runs in the same run, on another
port, against the same model. Needs ``wrk`` (Debian package).

    python -m benchmarks.bench_api --duration 30 --connections 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# each wrk thread walks its own slice of the path list, so no path repeats before it wraps
LUA = """
local paths = {%s}
local counter = 0
local stride = 1
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  stride = tonumber(args[1] or 1)
  pos = offset
end
function request()
  pos = pos + stride
  return wrk.format("GET", paths[(pos %% #paths) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_model(
    registry_root: Path, customers: int, products: int, orders: int, factors: int
) -> Any:
    """Generated orders -> ALS bundle -> production v1 of a local registry."""
    import pyarrow.compute as pc

    from jobs.adapters.registry.local import LocalRegistry
    from jobs.domain import generator as gen
    from jobs.domain.recommender import ALSParams
    from jobs.training import TrainConfig, fit_bundle

    end = dt.datetime(2025, 3, 31, tzinfo=dt.UTC)
    model = gen.build_model(
        42,
        n_customers=customers,
        n_products=products,
        reference=(end - dt.timedelta(days=60)).date(),
    )
    rng = np.random.default_rng(42)
    table = gen.generate_orders(
        model, end - dt.timedelta(days=60), end, orders, rng, defects=gen.DefectRates(*[0.0] * 7)
    )
    table = table.filter(
        pc.and_(pc.is_valid(table["customer_id"]), pc.greater(table["quantity"], 0))
    )
    # ALS with exactly ``factors`` (no search): the serving cost is what this measures; a
    # tuned EASE is served as 256 factors (jobs.domain.reco_eval.EXPORT_RANK): --factors 256
    bundle = fit_bundle(table, TrainConfig(params=ALSParams(factors=factors), tune_seconds=0))
    LocalRegistry(registry_root).register(bundle)
    return bundle


def wrk(url: str, paths: list[str], duration: int, connections: int, threads: int) -> dict:
    """One wrk run over ``paths``: req/s, p50/p90/p99 in ms, errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % ",".join(json.dumps(p) for p in paths))
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        script.name,
        url,
        "--",
        str(threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    os.unlink(script.name)
    lat = {
        m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)", out, re.M)
    }
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": lat.get("50"),
        "p90_ms": lat.get("90"),
        "p99_ms": lat.get("99"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "socket_errors": errors.group(1) if errors else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_api", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # by PID: the child we started
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def cache_counts(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        r: int(float(n))
        for r, n in re.findall(r'shoplake_api_cache_total\{result="(\w+)"\} (\S+)', text)
    }


def run(
    duration: int = 30,
    connections: int = 50,
    threads: int = 2,
    customers: int = 5000,
    products: int = 2000,
    orders: int = 150_000,
    factors: int = 16,
    save: bool = True,
) -> dict[str, Any]:
    """The whole benchmark; returns (and by default writes) the results."""
    from api.index import build_index
    from jobs.settings import Settings
    from lite.services.redis import RedisService
    from tests.support.annoy_check import cosine_neighbours, index_recall

    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="shoplake-bench-api-"))
    t0 = time.perf_counter()
    bundle = build_model(work / "registry", customers, products, orders, factors)
    train_s = time.perf_counter() - t0
    recall = index_recall(
        build_index(bundle.item_factors), cosine_neighbours(bundle.item_factors, 10), 10
    )
    redis_port, api_port, seed_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_svc = RedisService(Settings(_env_file=None, data_dir=work, redis_url=redis_url))  # type: ignore[call-arg]
    redis_svc.start()
    api = seed = None
    try:
        common = [str(work / "registry"), redis_url]
        api = start(["serve-api", *common, str(api_port)], api_port)
        seed = start(["serve-seed", *common, str(seed_port)], seed_port)
        url, seed_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{seed_port}"
        ids = [c for c in bundle.customer_ids.tolist() if c]
        hot = [f"/recommend/{quote(c)}?top_n=10" for c in ids[:1000]]
        with httpx.Client(base_url=url, timeout=10) as client:
            for path in hot:  # warm the cache
                client.get(path)
        # every (customer, top_n) pair once: more than a 30 s run can exhaust
        cold = [f"/recommend/{quote(c)}?top_n={n}" for n in range(11, 51) for c in ids]
        similar = [f"/similar/{quote(n, safe='')}?top_n=10" for n in bundle.product_names.tolist()]
        results: dict[str, Any] = {}
        before = cache_counts(url)
        results["cache_hits"] = wrk(url, hot, duration, connections, threads)
        mid = cache_counts(url)
        results["cache_misses"] = wrk(url, cold, duration, connections, threads)
        after = cache_counts(url)
        results["similar"] = wrk(url, similar, duration, connections, threads)
        results["seed_style_misses"] = wrk(seed_url, cold, duration, connections, threads)
        results["cache_hits"]["hit_ratio"] = _ratio(before, mid)
        results["cache_misses"]["hit_ratio"] = _ratio(mid, after)
    finally:
        for proc in (api, seed):
            if proc:
                stop(proc)
        redis_svc.stop()
    miss, base = (
        results["cache_misses"]["requests_per_s"],
        results["seed_style_misses"]["requests_per_s"],
    )
    report = {
        "benchmark": "bench_api",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "setup": {
            "customers": len(bundle.customer_ids),
            "products": len(bundle.product_ids),
            "factors": int(bundle.item_factors.shape[1]),
            "orders": orders,
            "duration_s": duration,
            "connections": connections,
            "wrk_threads": threads,
            "uvicorn_workers": 1,
            "cpus": os.cpu_count(),
            "train_s": round(train_s, 1),
        },
        "annoy_recall_at_10": round(recall, 4),
        "model_metrics": {k: round(v, 4) for k, v in bundle.metrics.items()},
        "results": results,
        "miss_speedup_vs_seed_style": round(miss / base, 1) if base else None,
    }
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"bench_api_f{factors}.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return report


def _ratio(before: dict[str, int], after: dict[str, int]) -> float:
    hits = after.get("hit", 0) - before.get("hit", 0)
    total = hits + after.get("miss", 0) - before.get("miss", 0)
    return round(hits / total, 4) if total else 0.0


# ---------------------------------------------------------------- the two servers
def serve_api(registry_root: str, redis_url: str, port: int) -> None:
    """The real API, as ``shoplake serve`` runs it (local registry under the data dir)."""
    from api.server import serve
    from jobs.settings import Settings

    data_dir = Path(registry_root).parent  # LocalRegistry lives at <data dir>/registry
    settings = Settings(_env_file=None, data_dir=data_dir, redis_url=redis_url, registry="local")  # type: ignore[call-arg]
    serve(settings, port=port)


def serve_seed(registry_root: str, redis_url: str, port: int) -> None:
    """The seed-style endpoint: Python lists and loops over every item, per request."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from jobs.adapters.registry.local import LocalRegistry

    version, b = LocalRegistry(Path(registry_root)).load("production")
    users = b.user_factors.tolist()
    items = b.item_factors.tolist()
    row_of = {c: i for i, c in enumerate(b.customer_ids.tolist())}
    bought = [set(b.bought[r].indices.tolist()) for r in range(b.bought.shape[0])]

    async def recommend(request: Request) -> JSONResponse:
        top_n = int(request.query_params.get("top_n", 10))
        row = row_of.get(request.path_params["customer_id"])
        if row is None:
            return JSONResponse({"strategy": "popular", "recommendations": []})
        user = users[row]
        scored = []
        for i, item in enumerate(items):
            if i in bought[row]:
                continue
            score = 0.0
            for a, c in zip(user, item, strict=True):
                score += a * c
            scored.append((score, i))
        scored.sort(reverse=True)
        recs = [
            {"product_id": b.product_ids[i], "product_name": b.product_names[i], "score": s}
            for s, i in scored[:top_n]
        ]
        return JSONResponse(
            {"strategy": "personal", "model_version": version, "recommendations": recs}
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/recommend/{customer_id}", recommend), Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, access_log=False, log_level="warning")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("serve-api", "serve-seed"):
        target = serve_api if sys.argv[1] == "serve-api" else serve_seed
        target(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--factors", type=int, default=16, help="ALS factors of the model")
    ns = parser.parse_args()
    report = run(
        ns.duration, ns.connections, ns.threads, ns.customers, ns.products, factors=ns.factors
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
