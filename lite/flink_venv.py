"""PyFlink's own virtual environment: ``apache-flink`` pinned, nothing of shoplake's inside.

PyFlink pins old libraries (apache-beam, pandas < 2.3, pyarrow < 21) that clash with the
project's, so it lives in a venv of its own outside the repository. The wheel is a whole
Flink distribution (``pyflink/bin``, ``pyflink/lib``, ``pyflink/conf``): the standalone
cluster runs from it too, so Flink is never fetched twice. The job program that runs in
this venv imports only the standard library and pyflink.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.services.engines import cache_dir

log = logging.getLogger(__name__)

FLINK_VERSION = "2.2.1"
INSTALL_TIMEOUT_S = 1800.0


def venv_dir() -> Path:
    """``SHOPLAKE_PYFLINK_VENV``, else ``~/.cache/shoplake/pyflink-<version>``."""
    chosen = os.environ.get("SHOPLAKE_PYFLINK_VENV")
    if chosen:
        return Path(chosen).expanduser()
    return cache_dir() / f"pyflink-{FLINK_VERSION}"


def python() -> Path:
    return venv_dir() / "bin" / "python"


def _wanted() -> str:
    return f"apache-flink=={FLINK_VERSION}\n"


def _stamp() -> Path:
    return venv_dir() / "shoplake-installed.txt"


def installed() -> bool:
    """True when the venv holds the pinned PyFlink (the stamp is written last)."""
    stamp = _stamp()
    return python().exists() and stamp.exists() and stamp.read_text() == _wanted()


def flink_home() -> Path:
    """The Flink distribution inside the wheel (``bin``, ``lib``, ``conf``, ``opt``)."""
    if not installed():
        raise ServiceUnavailable(
            f"PyFlink {FLINK_VERSION} is not installed: run `shoplake services install --full`"
        )
    found = sorted(venv_dir().glob("lib/python*/site-packages/pyflink"))
    if not found or not (found[0] / "lib").is_dir():
        raise ServiceUnavailable(f"no Flink distribution under {venv_dir()} (reinstall it)")
    return found[0]


def ensure() -> str:
    """Create the venv once (later calls return at once); one line saying what."""
    if installed():
        return f"PyFlink {FLINK_VERSION} in {venv_dir()}"
    venv_dir().parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv_dir().parent / f".{venv_dir().name}.lock"
    with lock_path.open("w") as lock:
        # two test sessions (or `up` and a test) must not pip-install into one venv at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return f"PyFlink {FLINK_VERSION} in {venv_dir()}"
        took = _install()
    return f"PyFlink {FLINK_VERSION} installed in {venv_dir()} in {took:.0f} s"


def _install() -> float:
    t0 = time.monotonic()
    log_path = venv_dir().parent / f"{venv_dir().name}-install.log"
    log.info(
        "installing PyFlink %s into %s (a few minutes, once: ~350 MB); log %s",
        FLINK_VERSION,
        venv_dir(),
        log_path,
    )
    steps: list[list[str]] = []
    if not python().exists():
        # the base interpreter of whatever runs us (a venv's python makes a sibling venv)
        steps.append([sys.executable, "-m", "venv", str(venv_dir())])
    steps.append(
        [str(python()), "-m", "pip", "install", "--quiet", f"apache-flink=={FLINK_VERSION}"]
    )
    with log_path.open("wb") as out:
        for cmd in steps:
            try:
                subprocess.run(
                    cmd, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=INSTALL_TIMEOUT_S
                )
            except (OSError, subprocess.SubprocessError) as exc:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise ServiceUnavailable(
                    f"installing PyFlink failed ({exc}); log {log_path}:\n{tail}"
                ) from exc
    _stamp().write_text(_wanted())
    return time.monotonic() - t0
