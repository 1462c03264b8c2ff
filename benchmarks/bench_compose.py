"""The compose files: image build times and size, time to a live dashboard, peak memory.

Builds, against a baseline from the same run:
- cold: the builder's cache and the image removed (downloads, compiles, MinIO's Go build);
- no change: the same build again, every layer cached (the baseline);
- code change: a copy of the repository with one Python file changed, as a developer's
  edit does: only the code layers rebuild. Target: seconds, not minutes.
Then, for compose.lite.yml and compose.full.yml (its image built first, not timed),
``up -d`` on free ports: seconds until every healthcheck passes and until the
dashboard is live (today's metrics arrived through Redis), and the peak memory of each
container and of all together while it runs (``docker stats``), then ``down -v``.

    python -m benchmarks.bench_compose [--watch 180] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from jobs.settings import Settings
from lite import docker_images
from lite.services.docker_engine import engine_for
from tests.support.platform_up import copy_worktree, free_ports

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compose.json"
LITE_PORTS = ("PG", "S3", "S3_CONSOLE", "REDIS", "AIRFLOW", "DASHBOARD", "API")
PORTS = {"lite": LITE_PORTS, "full": (*LITE_PORTS, "CONNECT", "FLINK", "TRINO")}
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def sh(cmd: list[str], env: dict[str, str], cwd: Path = ROOT, timeout: float = 1800) -> float:
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:5])} failed:\n{done.stderr[-3000:]}")
    return round(time.monotonic() - t0, 1)


def mem_bytes(text: str) -> int:
    value = text.split("/")[0].strip()
    for unit in sorted(UNITS, key=len, reverse=True):
        if value.endswith(unit):
            return int(float(value[: -len(unit)]) * UNITS[unit])
    return 0


def builds(env: dict[str, str], skip_cold: bool) -> dict[str, Any]:
    compose = docker_images.compose("lite")
    out: dict[str, Any] = {}
    if not skip_cold:
        subprocess.run(
            ["docker", "image", "rm", "-f", "shoplake:lite"],
            env=env,
            check=False,
            capture_output=True,
        )
        sh(["docker", "builder", "prune", "-af"], env)
        out["cold_s"] = sh([*compose, "build"], env)
    out["no_change_s"] = sh([*compose, "build"], env)  # the baseline
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_worktree(ROOT, copy)
        with (copy / "jobs" / "__init__.py").open("a") as fh:
            fh.write(f"# benchmark edit {uuid.uuid4().hex}\n")
        cmd = ["docker", "compose", "-f", str(copy / "compose.lite.yml"), "build"]
        out["code_change_s"] = sh(cmd, env, cwd=copy)
    sh([*compose, "build"], env)  # the image of the real tree again
    out["code_change_vs_no_change"] = round(out["code_change_s"] / max(out["no_change_s"], 0.1), 1)
    size = subprocess.run(
        ["docker", "image", "inspect", "shoplake:lite", "--format", "{{.Size}}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out["image_mb"] = round(int(size) / 1024**2)
    return out


def run_stack(env: dict[str, str], profile: str, watch_s: float) -> dict[str, Any]:
    ports = dict(zip(PORTS[profile], free_ports(len(PORTS[profile])), strict=True))
    env = {**env, **{f"SHOPLAKE_{n}_PORT": str(p) for n, p in ports.items()}}
    project = f"shoplake-bench-{uuid.uuid4().hex[:6]}"
    compose = docker_images.compose(profile, project)
    peak: dict[str, int] = {}
    peak_total = 0
    t0 = time.monotonic()
    try:
        sh([*docker_images.compose(profile), "build"], env)
        t0 = time.monotonic()
        healthy_s = sh([*compose, "up", "-d", "--wait", "--wait-timeout", "900"], env)
        live_s = None
        while time.monotonic() - t0 < healthy_s + watch_s:
            try:
                health = httpx.get(f"http://127.0.0.1:{ports['DASHBOARD']}/health", timeout=5)
                if live_s is None and health.json().get("mode") == "live":
                    live_s = round(time.monotonic() - t0, 1)
            except (httpx.HTTPError, ValueError):
                pass
            stats = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            total = 0
            for line in stats.splitlines():
                name, _, usage = line.partition("\t")
                if project in name:
                    used = mem_bytes(usage)
                    service = name.removeprefix(f"{project}-").rsplit("-", 1)[0]
                    peak[service] = max(peak.get(service, 0), used)
                    total += used
            peak_total = max(peak_total, total)
            time.sleep(3)
    finally:
        subprocess.run([*compose, "down", "-v"], env=env, capture_output=True, timeout=600)
    return {
        "up_to_healthy_s": healthy_s,
        "up_to_live_dashboard_s": live_s,
        "peak_mb": {k: round(v / 1024**2) for k, v in sorted(peak.items())},
        "peak_total_mb": round(peak_total / 1024**2),
        "watched_s": watch_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watch", type=float, default=180.0)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    with engine_for(Settings()) as host:
        env = docker_images.docker_env(host)
        docker_images.install_plugins()
        docker_images.ensure_base_image(env)
        report: dict[str, Any] = {"builds": builds(env, args.skip_cold)}
        for profile in ("lite", "full"):
            report[profile] = run_stack(env, profile, args.watch)
            print(f"{profile}: {report[profile]}", file=sys.stderr)
    report["load_avg"] = list(os.getloadavg())
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"code change rebuild {report['builds']['code_change_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
