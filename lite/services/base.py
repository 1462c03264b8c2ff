"""The shared life cycle of a native service: start detached, health-check, stop by PID."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from jobs.waiting import wait_for
from lite.services import proc, unprivileged
from lite.services.status import ServiceStatus

log = logging.getLogger(__name__)

# a first start on a new machine reads every file cold and fills empty caches (a
# 60 s wait that always sufficed was missed there once): it gets this many times longer
COLD_START_FACTOR = 3.0

__all__ = ["Service", "ServiceStatus"]


class Service(ABC):
    """One local server process with its pid file and log under ``data/services/<name>``."""

    name: ClassVar[str]
    start_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 20.0
    stop_signal: ClassVar[int] = signal.SIGTERM
    # pid files the engine's own scripts write (globs under home), removed once it stopped
    engine_pid_files: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home: Path = settings.data_path / "services" / self.name
        self.pid_file = self.home / f"{self.name}.pid"
        self.log_file = self.home / f"{self.name}.log"
        self._note = ""
        # the server this process launched, kept so that Python never reaps it behind our
        # back (a dropped Popen is reaped by the next Popen anywhere): its exit code stays ours
        self.launched: subprocess.Popen[bytes] | None = None

    # ---- what a subclass describes
    @property
    @abstractmethod
    def url(self) -> str: ...

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def healthy(self) -> bool:
        """One quick, bounded probe: does the server answer (with our credentials)?"""

    @property
    def external(self) -> bool:
        """True when settings point at a server we do not manage."""
        return False

    def install(self) -> str:
        """Fetch or build the engine once and say what and from where (``services install``)."""
        return "nothing to install"

    def ports(self) -> list[int]:
        return []

    def prepare(self) -> None:
        """One-time set-up before the process starts (initdb, config files)."""
        return None

    def ready(self) -> None:
        """Idempotent work once healthy (databases, buckets)."""
        return None

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run_as(self) -> str | None:
        """The OS user to run the server as (None: ourselves); it gets only its own group."""
        return None

    def workdir(self) -> Path:
        """The server's working folder (one it can enter)."""
        return self.home

    @property
    def marker(self) -> str:
        """What the server's command line contains: tells ours from a reused PID."""
        return str(self.home)

    def describe(self) -> str:
        return ""

    def adopt(self) -> int | None:
        """Find a running instance without our pid file (e.g. from the server's own)."""
        return None

    # ---- the shared life cycle
    def pid(self) -> int | None:
        """The PID of our running server; removes a stale pid file on the way."""
        pid = proc.read_pid(self.pid_file)
        if pid is not None and proc.is_ours(pid, self.marker):
            return pid
        if pid is not None:
            self._note = f"removed stale pid file (pid {pid} is gone or not ours)"
            log.warning("%s: %s", self.name, self._note)
            self.pid_file.unlink(missing_ok=True)
        adopted = self.adopt()
        if adopted is not None:
            proc.write_pid(self.pid_file, adopted)
        return adopted

    def status(self) -> ServiceStatus:
        if self.external:
            return ServiceStatus(self.name, self.answers(), None, self.url, "external")
        pid = self.pid()
        if pid is None:
            return ServiceStatus(self.name, False, None, self.url, self._note)
        detail = self.describe() if self.answers() else "not answering"
        return ServiceStatus(self.name, True, pid, self.url, detail)

    def start(self) -> ServiceStatus:
        if self.external:
            return self.status()
        pid = self.pid()
        if pid is not None:
            self._wait_healthy(pid, since=0)
            self.ready()
            return ServiceStatus(self.name, True, pid, self.url, "already running")
        busy = [p for p in self.ports() if proc.port_open("127.0.0.1", p)]
        if busy:
            raise ServiceUnavailable(
                f"{self.name}: port(s) {busy} on 127.0.0.1 already in use by another process "
                "(stop it, or choose other ports in the SHOPLAKE_* settings)"
            )
        t0 = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        pid, since = self._launch()
        try:
            self._wait_healthy(pid, since)
            self.ready()
        except BaseException:
            # the polite signal first: a SIGKILLed postmaster would orphan its workers
            proc.terminate(pid, self.stop_signal, 10)
            self.pid_file.unlink(missing_ok=True)
            raise
        took = time.monotonic() - t0
        log.info("%s started (pid %s) in %.1f s", self.name, pid, took)
        return ServiceStatus(self.name, True, pid, self.url, f"started in {took:.1f} s")

    def stop(self) -> ServiceStatus:
        if self.external:
            return self.status()
        pid = self.pid()
        if pid is None:
            return ServiceStatus(self.name, False, None, self.url, self._note or "not running")
        proc.terminate(pid, self.stop_signal, self.stop_timeout)
        # another session may have started a new server meanwhile: keep its pid file
        if proc.read_pid(self.pid_file) == pid:
            self.pid_file.unlink(missing_ok=True)
            for pattern in self.engine_pid_files:
                for stale in self.home.glob(pattern):
                    stale.unlink(missing_ok=True)
        return ServiceStatus(self.name, False, None, self.url, f"stopped pid {pid}")

    def run_foreground(self) -> int:
        """Run the server in the foreground (a container's main process); its exit code.

        The server's output goes to ours; once it is healthy, ``ready`` runs and one line
        says so; SIGTERM or SIGINT stop it as ``stop`` would (``stop_signal`` to its group).
        """
        if self.external:
            raise ServiceUnavailable(f"{self.name}: settings point at an external server")
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        child = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            cwd=self.workdir(),
            env=self.env(),
            start_new_session=True,
            **unprivileged.identity(self.run_as()),
        )
        proc.write_pid(self.pid_file, child.pid)

        def forward(signum: int, frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, self.stop_signal)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        try:
            self._wait_healthy(child.pid, since=0)
            self.ready()
            log.info("%s ready on %s (pid %s)", self.name, self.url, child.pid)
            return child.wait()
        finally:
            if child.poll() is None:
                proc.terminate(child.pid, self.stop_signal, self.stop_timeout)
            self.pid_file.unlink(missing_ok=True)

    def exit_code(self, pid: int) -> int | None:
        """How ``pid`` ended, when this process launched it (reaping it); else None."""
        child = self.launched
        if child is not None and child.pid == pid:
            return child.poll()
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # not our child: someone else reaps it
        return os.waitstatus_to_exitcode(status) if done else None

    def answers(self) -> bool:
        """One health probe; False also when the probe itself fails."""
        try:
            return self.healthy()
        except ServiceUnavailable:
            return False

    def _launch(self) -> tuple[int, int]:
        with self.log_file.open("ab") as logf:
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            logf.write(f"\n--- shoplake: starting {self.name} at {stamp} ---\n".encode())
            logf.flush()
            since = logf.tell()
            # own session: Ctrl-C in the terminal does not reach it, and stop can
            # signal the whole group it leads
            child = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.workdir(),
                env=self.env(),
                start_new_session=True,
                **unprivileged.identity(self.run_as()),
            )
        proc.write_pid(self.pid_file, child.pid)
        self.launched = child
        return child.pid, since

    def _started_before(self) -> Path:
        return self.home / ".started-before"

    def start_budget(self) -> float:
        """How long a start may take: longer the first time (files cold, caches empty)."""
        first = not self._started_before().exists()
        return self.start_timeout * (COLD_START_FACTOR if first else 1.0)

    def _wait_healthy(self, pid: int, since: int) -> None:
        budget = self.start_budget()

        def healthy() -> bool:
            self._check_starting(pid, since)
            return self.healthy()

        def too_late(_: str) -> ServiceUnavailable:
            return ServiceUnavailable(
                self._failure(f"not healthy after {budget:.0f} s (pid {pid})", since)
            )

        wait_for(healthy, timeout=budget, every=0.2, error=too_late)
        self._started_before().touch()

    def _check_starting(self, pid: int, since: int) -> None:
        """Raise ServiceUnavailable when the start under way can no longer succeed."""
        if not proc.alive(pid):
            raise ServiceUnavailable(self._failure(f"exited during start-up (pid {pid})", since))

    def _failure(self, why: str, since: int) -> str:
        tail = proc.log_tail(self.log_file, since)
        return f"{self.name} {why}; log {self.log_file}, last lines:\n{tail}"
