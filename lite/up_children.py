"""Child processes of ``shoplake up``: started in their own process group, stopped with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from lite.services import proc


class Child:
    """One ``shoplake ...`` subcommand with its log and pid file under ``home``."""

    def __init__(
        self, name: str, args: list[str], home: Path, argv: list[str] | None = None
    ) -> None:
        self.name = name
        # ``argv`` replaces the whole command (the supervisor's tests run plain Python)
        self.argv = argv if argv is not None else [sys.executable, "-m", "lite.cli", *args]
        self.log_file = home / "logs" / f"{name}.log"
        self.pid_file = home / "run" / f"{name}.pid"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> int:
        """Launch detached from our terminal; returns the PID."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        stale = proc.read_pid(self.pid_file)
        if stale is not None and proc.is_ours(stale, "lite.cli"):
            # an earlier `up` was killed outright: its child would hold our port
            proc.terminate(stale, signal.SIGTERM, 10)
        with self.log_file.open("ab") as log:
            # own session: a Ctrl-C in the terminal reaches only `up`, which stops
            # the children in order; killpg then reaches any grandchildren too
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        proc.write_pid(self.pid_file, self.popen.pid)
        return self.popen.pid

    def exit_code(self) -> int | None:
        """None while running, else the exit code."""
        return self.popen.poll() if self.popen else None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, SIGKILL it after ``timeout`` s; remove the pid file."""
        if self.popen is not None:
            pid = self.popen.pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                self.popen.wait(10)
            # grandchildren that outlived their parent still carry its group id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def tail(self, lines: int = 5) -> str:
        return proc.log_tail(self.log_file, lines=lines)
