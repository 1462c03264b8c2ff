"""The supervisor of ``shoplake up``: notice a service or child that died, restart it with back-off.

Every native service ``up`` started and every child process it launched is a *unit*. Once a
second the supervisor asks each unit whether its process still runs (and, less often, whether
a service still answers). A unit that died is logged in one line (name, pid, exit code or
signal) and restarted after an exponential back-off (1 s doubling to 60 s; the back-off resets
once it stayed up for a minute). A unit restarted too often within a window is given up on
with a clear line, while the rest keeps running. Restarts run in their own threads, so a slow
service start (Airflow) does not stop the others being watched.

Its view is written atomically to ``<data>/up/supervisor.json`` on every change, so
``shoplake status`` (another process) can show it; ``up`` removes the file when it stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jobs.settings import Settings
from lite.services import proc
from lite.services.base import Service
from lite.up_children import Child

STATE_FILE = "supervisor.json"


def state_path(settings: Settings) -> Path:
    """Where ``up`` keeps its supervisor's view (next to its pid file)."""
    return settings.data_path / "up" / STATE_FILE


@dataclass(frozen=True)
class Policy:
    """When to restart, how long to wait, and when to give up."""

    first_delay: float = 1.0
    max_delay: float = 60.0
    stable_after: float = 60.0  # up this long: the back-off starts again from first_delay
    max_restarts: int = 6  # this many restarts within ``window`` s: give up
    window: float = 600.0
    # a service that runs but has not answered its health probe for this long is restarted;
    # generous, since Airflow reports itself unhealthy for a while when PostgreSQL restarts
    unanswered_after: float = 120.0
    probe_every: float = 15.0

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` (1-based) of a run of failures."""
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, failures - 1)))


def exit_reason(code: int | None) -> str:
    """Popen's return code as words: ``exit code 3``, ``killed by SIGKILL``."""
    if code is None:
        return "exited (code unknown)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Unit(Protocol):
    """One supervised process: a native service or a child of ``up``."""

    name: str
    kind: str  # "service" or "child"
    log_file: Path

    def pid(self) -> int | None: ...

    def exited(self) -> str | None:
        """None while the process runs; else why it ended (it is reaped on the way)."""

    def answers(self) -> bool | None:
        """One health probe; None when the unit has none."""

    def restart(self) -> int:
        """Clear what is left of the old process, start a new one; its PID (raises on failure)."""


class ChildUnit:
    """A child process of ``up`` (dashboard, alerts, API, simulator)."""

    kind = "child"

    def __init__(self, child: Child) -> None:
        self.child = child
        self.name = child.name
        self.log_file = child.log_file

    def pid(self) -> int | None:
        return self.child.pid

    def exited(self) -> str | None:
        code = self.child.exit_code()
        return None if code is None else exit_reason(code)

    def answers(self) -> bool | None:
        return None

    def restart(self) -> int:
        self.child.stop()  # its grandchildren may still hold the port
        return self.child.start()


class ServiceUnit:
    """A native service ``up`` started (PostgreSQL, S3, Redis, Airflow...)."""

    kind = "service"

    def __init__(
        self, service: Service, pid: int, after_restart: Callable[[], object] | None = None
    ) -> None:
        self.service = service
        self.name = service.name
        self.log_file = service.log_file
        self._pid = pid
        # what depended on the old process and must be set up again (the Flink job)
        self.after_restart = after_restart

    def pid(self) -> int | None:
        return self._pid

    def exited(self) -> str | None:
        if proc.alive(self._pid):
            return None
        # our child when ``up`` launched it: reaped here, so its exit code is known
        return exit_reason(self.service.exit_code(self._pid))

    def answers(self) -> bool | None:
        return self.service.answers()

    def restart(self) -> int:
        # stop first: clears a stale pid file, a hung server, or components (Airflow's)
        # that outlived their leader and still hold the ports
        self.service.stop()
        st = self.service.start()
        if st.pid is None:
            raise RuntimeError(f"{self.name} started without a pid ({st.detail})")
        self._pid = st.pid
        if self.after_restart is not None:
            self.after_restart()  # a failure here is a failed restart: retried with back-off
        return st.pid


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class Record:
    """What the supervisor knows about one unit."""

    unit: Unit
    state: str = "running"  # running, restarting, failed
    restarts: int = 0
    failures: int = 0  # in the current run of failures: drives the back-off
    last_exit: str | None = None
    last_restart: str | None = None
    next_at: float | None = None  # monotonic time of the next restart attempt
    started_at: float = 0.0
    unanswered_since: float | None = None
    probed_at: float = 0.0
    attempts: deque[float] = field(default_factory=deque)
    worker: threading.Thread | None = None
    outcome: tuple[int | None, str | None] | None = None  # (pid, error) of a finished restart

    def view(self, now: float) -> dict[str, Any]:
        wait = None if self.next_at is None else max(0.0, round(self.next_at - now, 1))
        return {
            "name": self.unit.name,
            "kind": self.unit.kind,
            "state": self.state,
            "pid": self.unit.pid() if self.state == "running" else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_restart": self.last_restart,
            "next_attempt_in": wait if self.state == "restarting" else None,
        }


class Supervisor:
    """Watches units, restarts the ones that die, persists its view for ``shoplake status``."""

    def __init__(
        self,
        units: list[Unit],
        state_file: Path,
        say: Callable[[str], None],
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or Policy()
        self.state_file = state_file
        self.say = say
        self.clock = clock
        now = clock()
        self.records = [Record(u, started_at=now, probed_at=now) for u in units]
        self.closing = threading.Event()
        self._written = ""
        self._lock = threading.Lock()  # ``add`` and the state file, from other threads
        self.write_state()

    def add(self, unit: Unit) -> None:
        """Watch ``unit`` too from now on (``up`` starts some while the supervisor runs)."""
        now = self.clock()
        with self._lock:
            self.records = [*self.records, Record(unit, started_at=now, probed_at=now)]
        self.write_state()

    def record(self, name: str) -> Record:
        return next(r for r in self.records if r.unit.name == name)

    def run(self, stop: threading.Event, every: float = 1.0) -> None:
        """Tick until ``stop`` is set."""
        while not stop.wait(every):
            self.tick()

    def tick(self) -> None:
        """One look at every unit; writes the state file when something changed."""
        for rec in self.records:  # ``add`` replaces the list: this loop keeps its own
            if self.closing.is_set():
                break
            now = self.clock()
            if rec.state == "running":
                self._watch(rec, now)
            elif rec.state == "restarting":
                self._advance(rec, now)
        self.write_state()

    def _watch(self, rec: Record, now: float) -> None:
        reason = rec.unit.exited()
        if reason is None and self._hung(rec, now):
            reason = f"not answering for {now - (rec.unanswered_since or now):.0f} s"
        if reason is not None:
            self._failed(rec, reason, now)
        elif rec.failures and now - rec.started_at >= self.policy.stable_after:
            rec.failures = 0  # it stayed up: the next failure waits first_delay again

    def _hung(self, rec: Record, now: float) -> bool:
        if now - rec.probed_at < self.policy.probe_every:
            return False
        rec.probed_at = now
        ok = rec.unit.answers()
        if ok is None or ok:
            rec.unanswered_since = None
            return False
        if rec.unanswered_since is None:
            rec.unanswered_since = now
        return now - rec.unanswered_since >= self.policy.unanswered_after

    def _failed(self, rec: Record, reason: str, now: float) -> None:
        """Log it; schedule a restart after the back-off, or give up."""
        rec.last_exit = reason
        rec.unanswered_since = None
        pid = rec.unit.pid()
        window = self.policy.window
        while rec.attempts and now - rec.attempts[0] > window:
            rec.attempts.popleft()
        if len(rec.attempts) >= self.policy.max_restarts:
            rec.state, rec.next_at = "failed", None
            self.say(
                f"supervisor: {rec.unit.name} (pid {pid}) {reason}; gave up after "
                f"{len(rec.attempts)} restarts in {window:.0f} s, the rest keeps running "
                f"(log {rec.unit.log_file})"
            )
            return
        rec.failures += 1
        delay = self.policy.delay(rec.failures)
        rec.state, rec.next_at = "restarting", now + delay
        self.say(
            f"supervisor: {rec.unit.name} (pid {pid}) {reason}; restarting in {delay:g} s "
            f"(restart {rec.restarts + 1}, log {rec.unit.log_file})"
        )

    def _advance(self, rec: Record, now: float) -> None:
        if rec.worker is None:
            if rec.next_at is not None and now >= rec.next_at:
                rec.attempts.append(now)
                rec.outcome = None
                rec.worker = threading.Thread(
                    target=self._restart, args=(rec,), name=f"restart-{rec.unit.name}", daemon=True
                )
                rec.worker.start()
            return
        if rec.worker.is_alive():
            return
        rec.worker = None
        pid, error = rec.outcome or (None, "restart ended without a result")
        rec.restarts += 1
        rec.last_restart = _now_iso()
        if error is None:
            rec.state, rec.next_at, rec.started_at = "running", None, now
            rec.probed_at = now
            self.say(f"supervisor: {rec.unit.name} restarted, pid {pid} (restarts {rec.restarts})")
        else:
            self._failed(rec, f"restart failed: {error}", now)

    def _restart(self, rec: Record) -> None:
        try:
            rec.outcome = (rec.unit.restart(), None)
        except Exception as exc:  # any failure to start is retried with back-off
            first = (str(exc).splitlines() or [exc.__class__.__name__])[0]
            rec.outcome = (None, first)

    def close(self, timeout: float = 300.0) -> None:
        """Stop restarting: wait for restarts in flight, so teardown finds every process."""
        self.closing.set()
        for rec in self.records:
            if rec.worker is not None:
                rec.worker.join(timeout)

    # ---- the persisted view
    def view(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "up_pid": os.getpid(),
            "updated_at": _now_iso(),
            "units": [r.view(now) for r in self.records],
        }

    def write_state(self) -> None:
        with self._lock:
            view = self.view()
            # skip the rewrite when only the time stamp would change
            key = json.dumps(view["units"], sort_keys=True)
            if key == self._written:
                return
            self._written = key
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(view, indent=1) + "\n")
            tmp.replace(self.state_file)

    def remove_state(self) -> None:
        self.state_file.unlink(missing_ok=True)


def read_state(path: Path) -> dict[str, Any] | None:
    """The view of the running ``up``'s supervisor; None when no ``up`` runs."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("up_pid") if isinstance(state, dict) else None
    if not isinstance(pid, int) or not proc.is_ours(pid, "up"):
        return None  # left by an ``up`` that was killed outright
    return state


def status_lines(state: dict[str, Any]) -> list[str]:
    """``shoplake status``: one line per supervised service and child."""
    lines = [f"supervised by shoplake up (pid {state['up_pid']}):"]
    for u in state.get("units", []):
        pid = f"pid {u['pid']}" if u.get("pid") else "-"
        parts = [f"  {u['name']:<9} {u['kind']:<7} {u['state']:<10} {pid:<11}"]
        parts.append(f"restarts {u['restarts']}")
        if u.get("last_exit"):
            parts.append(f"last exit: {u['last_exit']}")
        if u.get("last_restart"):
            parts.append(f"last restart {u['last_restart']}")
        if u.get("next_attempt_in") is not None:
            parts.append(f"next try in {u['next_attempt_in']:.0f} s")
        lines.append(", ".join(parts))
    return lines


def unit_pid(state: dict[str, Any] | None, name: str) -> int | None:
    """The PID the supervisor shows for ``name`` (None: unknown or not running)."""
    for u in (state or {}).get("units", []):
        if u.get("name") == name and u.get("state") == "running":
            with contextlib.suppress(TypeError, ValueError):
                return int(u["pid"])
    return None
