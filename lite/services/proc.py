"""Process helpers for the service manager: PID files, ownership checks, signals, ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import psutil


def read_pid(pid_file: Path) -> int | None:
    """The PID written in ``pid_file``, or None when missing or unreadable."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_pid(pid_file: Path, pid: int) -> None:
    """Write ``pid`` atomically so a reader never sees a half-written file."""
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(pid_file)


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def is_ours(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and one of its arguments contains ``marker`` (our data dir).

    This is what tells our server apart from a process that reused a stale PID.
    """
    if not alive(pid):
        return False
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        # hidepid /proc: we cannot tell, so keep tracking it rather than start a twin
        return True
    return any(marker in arg for arg in cmdline)


def reap(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to exit (reaping it if it is our child)."""
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return not alive(pid)
    return True


def terminate(pid: int, sig: int, timeout: float) -> None:
    """Send ``sig`` to ``pid``; after ``timeout`` s SIGKILL its whole process group."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if reap(pid, timeout):
        return
    # the service ignored the polite signal: kill its process group (it leads its
    # own session, so the group is exactly the server and its helpers)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    reap(pid, 10)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(log_file: Path, since: int = 0, lines: int = 25) -> str:
    """The last ``lines`` lines of ``log_file`` written after byte offset ``since``."""
    try:
        with log_file.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"
