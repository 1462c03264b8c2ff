"""``make demo`` in a fresh clone: seconds to a live dashboard, per phase.

Clones the repository (its committed HEAD) into a temporary folder, runs ``make demo`` there
on the default ports and polls until the dashboard is live: ``/health`` answers AND its
``version`` is above 0 (a first micro-batch has published the Today page's metrics). Every
line ``make demo`` prints is time-stamped, so the phases come from the output itself:

- ``install``: the clone's ``.venv`` (``make install``), until ``shoplake services install``
- ``engines``: ``shoplake services install`` (cached engines: a check; Airflow's venv keyed
  by its lock, so a clone with the same lock reuses it), until ``shoplake up``
- ``services``: ``up`` starting PostgreSQL, S3, Redis and Airflow (each one's "running" line)
- ``seed``, ``catch_up`` (the medallion for the missing days), ``model`` (a first training)
- ``dashboard_health`` / ``first_metrics``: polled from outside, seconds since the start

Then it waits (``--settle``) until ``up`` says it is up and the background work (catch-up,
model) is done, sends SIGTERM to ``up`` by its pid file (``make stop`` in the clone if it does
not finish), checks that no process of the clone is left and removes the clone. The engines
stay cached in ``~/.cache/shoplake`` (this measures a warm cache; ``--cold-note`` only records
what a fresh machine adds, from benchmarks/results/install.json and the README's MinIO build).
Only one demo may run on a machine (default ports): it refuses to start if they are taken.

    python -m benchmarks.bench_demo_start [--repo PATH] [--timeout 600] [--label before]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "demo_start.json"
TARGET_S = 60.0
DEFAULT_PORTS = {
    "postgres": 5434,
    "s3": 9000,
    "redis": 6379,
    "airflow": 8080,
    "dashboard": 8501,
    "api": 8000,
}

# (phase mark, pattern on a line of `make demo`'s output); the first match wins
MARKS: list[tuple[str, re.Pattern[str]]] = [
    ("engines_start", re.compile(r"^\S*/shoplake services install\b")),
    ("up_start", re.compile(r"^\S*/shoplake up\b")),
    ("postgres", re.compile(r"^postgres\s+running")),
    ("s3", re.compile(r"^s3\s+running")),
    ("redis", re.compile(r"^redis\s+running")),
    ("airflow", re.compile(r"^airflow\s+running")),
    ("seed_done", re.compile(r"^seed(ed)? ")),
    ("first_metrics_published", re.compile(r"^metrics \d")),
    ("dashboard_live_line", re.compile(r"^dashboard live at")),
    ("catch_up_start", re.compile(r"catching the lake up")),
    ("catch_up_done", re.compile(r"^lake caught up")),
    ("model_done", re.compile(r"NDCG@10 .* vs popularity|^no model trained yet|^model ")),
    ("children_start", re.compile(r"^dashboard\s+started")),
    ("up_done", re.compile(r"^shoplake is up")),
]


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    """``make demo`` in ``clone``, its output time-stamped since ``t0``."""

    def __init__(self, clone: Path, log_path: Path) -> None:
        self.clone = clone
        self.log_path = log_path
        self.t0 = time.monotonic()
        self.marks: dict[str, float] = {}
        self.lines: list[tuple[float, str]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLAKE_")}
        self.popen = subprocess.Popen(
            ["make", "demo"],
            cwd=clone,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        with self.log_path.open("w") as log:
            for raw in self.popen.stdout:
                t, line = self.now(), raw.rstrip("\n")
                self.lines.append((t, line))
                log.write(f"{t:8.2f} {line}\n")
                log.flush()
                for mark, pattern in MARKS:
                    if mark not in self.marks and pattern.search(line.strip()):
                        self.marks[mark] = t
                        break

    def up_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.clone / ".shoplake" / "up" / "up.pid").read_text().strip())
        return None

    def stop(self) -> dict[str, Any]:
        """SIGTERM ``up`` (it stops its children and services); ``make stop`` as a fallback."""
        t = time.monotonic()
        pid = self.up_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.popen.wait(120)
        except subprocess.TimeoutExpired:
            subprocess.run(["make", "stop"], cwd=self.clone, check=False, timeout=120)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(30)
        self.reader.join(10)
        left = leftovers(self.clone)
        if left:  # the services by their pid files, as `make stop` does
            subprocess.run(["make", "stop"], cwd=self.clone, check=False, timeout=120)
            left = leftovers(self.clone)
        return {
            "stop_s": round(time.monotonic() - t, 1),
            "exit_code": self.popen.returncode,
            "leftover_pids": left,
        }


def leftovers(clone: Path) -> list[int]:
    """Processes whose command line or working folder is in the clone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            if str(clone) in cmd or cwd.startswith(str(clone)):
                found.append(int(entry.name))
    return found


def poll_live(demo: Demo, port: int, timeout: float, found: dict[str, float]) -> None:
    """Record when /health first answers and when its version first exceeds 0."""
    url = f"http://127.0.0.1:{port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and demo.popen.poll() is None:
        try:
            body = httpx.get(url, timeout=1.0).json()
        except (httpx.HTTPError, ValueError):
            body = None
        if isinstance(body, dict):
            found.setdefault("dashboard_health", demo.now())
            if int(body.get("version") or 0) > 0:
                found["first_metrics"] = demo.now()
                return
        time.sleep(0.25)


def phases(marks: dict[str, float], live: dict[str, float]) -> dict[str, float | None]:
    """Seconds per phase (None: the phase's lines were not seen)."""

    def span(a: str | None, b: str) -> float | None:
        start = marks.get(a, 0.0) if a else 0.0
        return round(marks[b] - start, 2) if b in marks and (a is None or a in marks) else None

    core = [marks[s] for s in ("postgres", "s3", "redis") if s in marks]
    core_end = max(core) if len(core) == 3 else None
    if core_end is not None:
        marks = {**marks, "core_services": core_end}
    if "seed_done" in marks:  # the seed follows the last service started before it
        before = [marks[s] for s in ("core_services", "airflow") if s in marks]
        before = [t for t in before if t <= marks["seed_done"]]
        if before:
            marks = {**marks, "seed_start": max(before)}
    return {
        "install": span(None, "engines_start"),
        "engines": span("engines_start", "up_start"),
        "core_services": span("up_start", "core_services"),
        "seed": span("seed_start", "seed_done"),
        "catch_up": span("catch_up_start", "catch_up_done"),
        "model": span("catch_up_done", "model_done"),
        "airflow_running_at": marks.get("airflow"),
        "up_done_at": marks.get("up_done"),
        "dashboard_health_at": live.get("dashboard_health"),
        "first_metrics_at": live.get("first_metrics"),
    }


def watch_updates(demo: Demo, port: int, seconds: float) -> list[tuple[float, int]]:
    """(time, dashboard version) whenever the version changes, for ``seconds``: the
    micro-batch goes on (up's own, then Airflow's DAG)."""
    url = f"http://127.0.0.1:{port}/health"
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and demo.popen.poll() is None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            version = int(httpx.get(url, timeout=2.0).json().get("version") or 0)
            if not seen or seen[-1][1] != version:
                seen.append((demo.now(), version))
        time.sleep(1.0)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="the repository to clone")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="after live: seconds to wait for `up` to finish its start-up",
    )
    parser.add_argument(
        "--watch",
        type=float,
        default=0.0,
        help="after the start: seconds to watch the dashboard's updates",
    )
    parser.add_argument("--label", default="warm", help="the run's name in the results")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy make's output here")
    args = parser.parse_args()

    taken = [f"{n}:{p}" for n, p in DEFAULT_PORTS.items() if port_taken(p)]
    if taken:
        raise SystemExit(f"default ports taken ({', '.join(taken)}): is a demo running?")
    base = Path(tempfile.mkdtemp(prefix="shoplake-demo-start-"))
    clone = base / "shoplake"
    log_path = base / "make-demo.log"
    result: dict[str, Any] = {"label": args.label, "target_s": TARGET_S}
    try:
        t_clone = time.monotonic()
        subprocess.run(
            ["git", "clone", "--quiet", str(args.repo), str(clone)], check=True, timeout=300
        )
        result["clone_s"] = round(time.monotonic() - t_clone, 2)
        result["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=clone,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        demo = Demo(clone, log_path)
        live: dict[str, float] = {}
        try:
            poll_live(demo, DEFAULT_PORTS["dashboard"], args.timeout, live)
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and demo.popen.poll() is None:
                if "up_done" in demo.marks and background_done(demo):
                    break
                time.sleep(1)
            result["everything_up_at"] = demo.now() if background_done(demo) else None
            if args.watch:
                result["versions"] = watch_updates(demo, DEFAULT_PORTS["dashboard"], args.watch)
        finally:
            result["stop"] = demo.stop()
            if args.keep_log:
                shutil.copy(log_path, args.keep_log)
        result["live_s"] = live.get("first_metrics")
        result["target_met"] = live.get("first_metrics") is not None and (
            live["first_metrics"] <= TARGET_S
        )
        result["phases"] = phases(demo.marks, live)
        result["marks"] = demo.marks
        result["load_avg"] = os.getloadavg()
        result["output"] = [f"{t:.1f} {line}" for t, line in demo.lines[-200:]]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result, indent=2))
    save(result)


def background_done(demo: Demo) -> bool:
    """``up`` said it is up and the model step (the last of the start-up work) has run."""
    return "up_done" in demo.marks and "model_done" in demo.marks


def save(result: dict[str, Any]) -> None:
    """Append this run to the results file, keyed by its label (a later run replaces it)."""
    runs: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            runs = json.loads(RESULTS.read_text()).get("runs", {})
    runs[result["label"]] = result
    RESULTS.write_text(json.dumps({"target_s": TARGET_S, "runs": runs}, indent=2) + "\n")
    print(f"saved to {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
