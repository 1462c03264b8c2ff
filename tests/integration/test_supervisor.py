"""The supervisor's policy with real short-lived processes: restart, back-off, give-up, reset.

No platform here: the units are plain ``python -c`` children and one tiny native service
(Python's HTTP server through the ``Service`` life cycle), killed with real signals.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.settings import Settings
from lite.services import proc
from lite.services.base import Service
from lite.supervisor import (
    ChildUnit,
    Policy,
    ServiceUnit,
    Supervisor,
    exit_reason,
    read_state,
    status_lines,
)
from lite.up_children import Child
from tests.support.platform_up import free_ports

pytestmark = pytest.mark.integration

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]
FAST = Policy(first_delay=0.2, max_delay=0.8, stable_after=1.0, max_restarts=5, window=60.0)


def child(tmp_path: Path, name: str, argv: list[str]) -> Child:
    c = Child(name, [], tmp_path / "up", argv=argv)
    c.start()
    return c


def drive(sup: Supervisor, until: Callable[[], bool], timeout: float = 20.0) -> None:
    """Tick the supervisor (as ``up`` does, faster) until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, json.dumps(sup.view(), indent=1)
        sup.tick()
        time.sleep(0.05)


@pytest.fixture
def said() -> list[str]:
    return []


def test_a_killed_child_is_restarted_logged_and_shown(tmp_path: Path, said: list[str]) -> None:
    a, b = child(tmp_path, "a", SLEEPER), child(tmp_path, "b", SLEEPER)
    state = tmp_path / "up" / "supervisor.json"
    sup = Supervisor([ChildUnit(a), ChildUnit(b)], state, said.append, FAST)
    try:
        old, other = a.pid, b.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        drive(sup, lambda: sup.record("a").state == "running" and a.pid != old)
        view = {u["name"]: u for u in json.loads(state.read_text())["units"]}
        assert view["a"]["restarts"] == 1 and view["a"]["pid"] == a.pid != old
        assert view["a"]["last_exit"] == "killed by SIGKILL" and view["a"]["last_restart"]
        assert view["b"] == {**view["b"], "restarts": 0, "pid": other, "state": "running"}
        assert proc.alive(a.pid) and b.pid == other and proc.alive(other)
        assert any(f"a (pid {old}) killed by SIGKILL; restarting in 0.2 s" in s for s in said)
        assert any(f"a restarted, pid {a.pid} (restarts 1)" in s for s in said)
        # the pid file follows the restart, so a later ``up`` finds the right process
        assert proc.read_pid(a.pid_file) == a.pid
    finally:
        sup.close()
        a.stop()
        b.stop()


def test_a_unit_added_while_it_runs_is_watched_and_restarted(
    tmp_path: Path, said: list[str]
) -> None:
    """``up`` starts Airflow and the API while the supervisor already runs in its thread."""
    import threading

    a = child(tmp_path, "a", SLEEPER)
    state = tmp_path / "up" / "supervisor.json"
    sup = Supervisor([ChildUnit(a)], state, said.append, FAST)
    stop = threading.Event()
    runner = threading.Thread(target=sup.run, args=(stop, 0.05))
    runner.start()
    late = child(tmp_path, "late", SLEEPER)
    try:
        sup.add(ChildUnit(late))
        assert [u["name"] for u in json.loads(state.read_text())["units"]] == ["a", "late"]
        old = late.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not (sup.record("late").state == "running" and late.pid != old):
            assert time.monotonic() < deadline, json.dumps(sup.view(), indent=1)
            time.sleep(0.05)
        assert proc.alive(late.pid) and sup.record("a").restarts == 0
        assert any(f"late (pid {old}) killed by SIGKILL" in s for s in said)
    finally:
        stop.set()
        runner.join(10)
        sup.close()
        a.stop()
        late.stop()


def test_back_off_doubles_to_the_cap_then_gives_up_while_the_rest_runs(
    tmp_path: Path, said: list[str]
) -> None:
    crash, keep = child(tmp_path, "crash", CRASHER), child(tmp_path, "keep", SLEEPER)
    state = tmp_path / "up" / "supervisor.json"
    sup = Supervisor([ChildUnit(crash), ChildUnit(keep)], state, said.append, FAST)
    try:
        drive(sup, lambda: sup.record("crash").state == "failed", timeout=30)
        rec = sup.record("crash")
        attempts = list(rec.attempts)
        assert len(attempts) == FAST.max_restarts == rec.restarts
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        # each wait after a failure: 0.4, 0.8, 0.8, 0.8 (plus the crash's own run time)
        for n, gap in enumerate(gaps, start=2):
            assert FAST.delay(n) * 0.95 <= gap < FAST.delay(n) + 1.5, gaps
        assert [FAST.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 0.8, 0.8]
        gave_up = [s for s in said if "gave up" in s]
        assert len(gave_up) == 1 and "crash" in gave_up[0] and "exit code 3" in gave_up[0]
        # a permanent failure stays failed: no more attempts, however long we watch
        for _ in range(10):
            sup.tick()
            time.sleep(0.05)
        assert len(rec.attempts) == FAST.max_restarts
        units = {u["name"]: u for u in json.loads(state.read_text())["units"]}
        assert units["crash"]["state"] == "failed" and units["crash"]["pid"] is None
        assert units["keep"]["state"] == "running" and proc.alive(keep.pid or 0)
    finally:
        sup.close()
        crash.stop()
        keep.stop()


def test_back_off_resets_once_the_unit_stayed_up(tmp_path: Path, said: list[str]) -> None:
    a = child(tmp_path, "a", SLEEPER)
    sup = Supervisor([ChildUnit(a)], tmp_path / "s.json", said.append, FAST)
    rec = sup.record("a")
    try:
        for _ in range(2):  # two quick kills: the second waits twice as long
            pid = a.pid or 0
            os.kill(pid, signal.SIGKILL)
            drive(sup, lambda p=pid: rec.state == "running" and a.pid != p)  # type: ignore[misc]
        assert rec.failures == 2
        time.sleep(FAST.stable_after + 0.1)
        sup.tick()
        assert rec.failures == 0
        pid = a.pid or 0
        os.kill(pid, signal.SIGKILL)
        drive(sup, lambda: rec.state == "restarting")
        assert rec.failures == 1 and rec.restarts == 2
        assert f"restarting in {FAST.delay(1):g} s (restart 3" in said[-1]
        assert rec.next_at is not None
        assert rec.next_at - time.monotonic() <= FAST.first_delay + 0.01
    finally:
        sup.close()
        a.stop()


def test_nothing_is_restarted_once_closed(tmp_path: Path, said: list[str]) -> None:
    a = child(tmp_path, "a", SLEEPER)
    sup = Supervisor([ChildUnit(a)], tmp_path / "s.json", said.append, FAST)
    try:
        sup.close()
        old = a.pid or 0
        os.kill(old, signal.SIGKILL)
        time.sleep(FAST.first_delay * 3)
        for _ in range(5):
            sup.tick()
        assert a.pid == old and a.exit_code() == -signal.SIGKILL and not said
    finally:
        a.stop()


class HttpService(Service):
    """A real (tiny) native service: Python's HTTP server on a free port."""

    name = "http"
    stop_timeout = 3.0  # a hung (SIGSTOPped) server is SIGKILLed after this
    start_timeout = 20.0

    def __init__(self, settings: Settings, port: int) -> None:
        super().__init__(settings)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "http.server", str(self.port)),
            *("--bind", "127.0.0.1", "--directory", str(self.home)),
        ]

    def ports(self) -> list[int]:
        return [self.port]

    def healthy(self) -> bool:
        return proc.port_open("127.0.0.1", self.port)


def test_a_killed_service_is_restarted_through_its_life_cycle(
    tmp_path: Path, said: list[str]
) -> None:
    from tests.conftest import settings_for_tests

    (port,) = free_ports(1)
    svc = HttpService(settings_for_tests(data_dir=tmp_path / "data"), port)
    st = svc.start()
    assert st.pid is not None
    sup = Supervisor([ServiceUnit(svc, st.pid)], tmp_path / "s.json", said.append, FAST)
    try:
        os.kill(st.pid, signal.SIGKILL)
        # any other process started meanwhile (here or in another thread of ``up``) must
        # not reap the server behind the supervisor's back and lose its exit code
        while proc.alive(st.pid):
            time.sleep(0.02)
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        drive(sup, lambda: sup.record("http").restarts == 1)
        rec = sup.record("http")
        new = rec.unit.pid()
        assert rec.state == "running" and new != st.pid and svc.pid() == new
        assert rec.last_exit == "killed by SIGKILL" and svc.answers()
        assert any(f"http (pid {st.pid}) killed by SIGKILL" in s for s in said)
    finally:
        sup.close()
        svc.stop()
    assert svc.pid() is None


def test_a_service_that_stops_answering_is_restarted(tmp_path: Path, said: list[str]) -> None:
    from tests.conftest import settings_for_tests

    (port,) = free_ports(1)
    svc = HttpService(settings_for_tests(data_dir=tmp_path / "data"), port)
    st = svc.start()
    assert st.pid is not None
    hung = Policy(first_delay=0.1, probe_every=0.1, unanswered_after=0.5)
    sup = Supervisor([ServiceUnit(svc, st.pid)], tmp_path / "s.json", said.append, hung)
    try:
        os.kill(st.pid, signal.SIGSTOP)  # alive but answering nothing: a hung server
        drive(sup, lambda: sup.record("http").restarts == 1)
        rec = sup.record("http")
        assert rec.last_exit is not None and rec.last_exit.startswith("not answering for")
        assert not proc.alive(st.pid) and svc.answers()
    finally:
        sup.close()
        svc.stop()
        if proc.alive(st.pid):
            os.kill(st.pid, signal.SIGKILL)


def test_status_lines_and_a_stale_state_file(tmp_path: Path) -> None:
    assert exit_reason(-9) == "killed by SIGKILL" and exit_reason(2) == "exit code 2"
    view = {
        "up_pid": 4242,
        "units": [
            {
                "name": "postgres",
                "kind": "service",
                "state": "running",
                "pid": 17,
                "restarts": 1,
                "last_exit": "killed by SIGKILL",
                "last_restart": "2025-01-01T00:00:00+00:00",
                "next_attempt_in": None,
            }
        ],
    }
    lines = status_lines(view)
    assert lines[0] == "supervised by shoplake up (pid 4242):"
    assert "postgres" in lines[1] and "pid 17" in lines[1] and "restarts 1" in lines[1]
    assert "last exit: killed by SIGKILL" in lines[1]
    # the file of an ``up`` that no longer runs is not shown as if it did
    stale = tmp_path / "supervisor.json"
    stale.write_text(json.dumps(view))
    assert read_state(stale) is None
    assert read_state(tmp_path / "missing.json") is None
