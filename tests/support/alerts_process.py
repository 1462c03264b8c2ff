"""``shoplake alerts run`` as a real process (for kill -9 tests), configured by ``Settings``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from jobs.settings import Settings
from lite.services.airflow.config import settings_env


def start_alerts(settings: Settings, args: list[str], log: Path) -> subprocess.Popen:
    """Start ``shoplake alerts run ARGS`` with exactly ``settings``.

    Nothing leaks in: no SHOPLAKE_* of the caller, and the working folder is the log's (so a
    developer's ``.env`` in the repository is not read).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "TELEGRAM_"))}
    env.update(settings_env(settings))
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lite.cli", "alerts", "run", *args],
            cwd=log.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def rss_mb(proc: subprocess.Popen) -> float:
    """The process's resident memory in MB (0 once it is gone)."""
    try:
        return psutil.Process(proc.pid).memory_info().rss / 2**20
    except psutil.Error:
        return 0.0
