"""Airflow's own virtual environment: ``apache-airflow`` pinned, shoplake installed editable.

Airflow pins libraries (SQLAlchemy, FastAPI, Starlette...) that need not match the
project's, so it gets a venv of its own outside the repository, keyed by the Airflow
version and the checkout it serves (an editable install points at one checkout).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.services.engines import cache_dir

log = logging.getLogger(__name__)

AIRFLOW_VERSION = "3.3.2"
REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1800.0


def venv_dir() -> Path:
    """``SHOPLAKE_AIRFLOW_VENV``, else ``~/.cache/shoplake/airflow-<version>-<checkout hash>``."""
    chosen = os.environ.get("SHOPLAKE_AIRFLOW_VENV")
    if chosen:
        return Path(chosen).expanduser()
    checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    return cache_dir() / f"airflow-{AIRFLOW_VERSION}-{checkout}"


def bin_dir() -> Path:
    return venv_dir() / "bin"


def python() -> Path:
    return bin_dir() / "python"


def _wanted() -> str:
    # the project's dependencies change with pyproject.toml: reinstall when it does
    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    return f"apache-airflow=={AIRFLOW_VERSION} shoplake@{REPO} pyproject {pyproject}\n"


def _stamp() -> Path:
    return venv_dir() / "shoplake-installed.txt"


def installed() -> bool:
    """True when the venv holds the pinned Airflow and this checkout's current dependencies."""
    stamp = _stamp()
    return python().exists() and stamp.exists() and stamp.read_text() == _wanted()


def ensure() -> str:
    """Create or update the venv (once; later calls return at once); one line saying what."""
    if installed():
        return f"Airflow {AIRFLOW_VERSION} in {venv_dir()}"
    venv_dir().parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv_dir().parent / f".{venv_dir().name}.lock"
    with lock_path.open("w") as lock:
        # two test sessions (or `up` and a test) must not pip-install into one venv at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return f"Airflow {AIRFLOW_VERSION} in {venv_dir()}"
        took = _install()
    return f"Airflow {AIRFLOW_VERSION} installed in {venv_dir()} in {took:.0f} s"


def _install() -> float:
    t0 = time.monotonic()
    log_path = venv_dir().parent / f"{venv_dir().name}-install.log"
    log.info(
        "installing Airflow %s into %s (about a minute, once); log %s",
        AIRFLOW_VERSION,
        venv_dir(),
        log_path,
    )
    steps: list[list[str]] = []
    if not python().exists():
        # the base interpreter of whatever runs us (a venv's python makes a sibling venv)
        steps.append([sys.executable, "-m", "venv", str(venv_dir())])
    steps.append(
        [
            str(python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"apache-airflow=={AIRFLOW_VERSION}",
            "-e",
            str(REPO),
        ]
    )
    with log_path.open("wb") as out:
        for cmd in steps:
            try:
                subprocess.run(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=INSTALL_TIMEOUT_S,
                    cwd=REPO,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                tail = log_path.read_text(errors="replace")[-1500:]
                raise ServiceUnavailable(
                    f"installing Airflow failed ({exc}); log {log_path}:\n{tail}"
                ) from exc
    _stamp().write_text(_wanted())
    return time.monotonic() - t0
