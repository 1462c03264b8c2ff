"""A virtual environment of its own for an engine that pins libraries the project cannot share.

Airflow and PyFlink each get one outside the repository. It is created once, under a file
lock (two test sessions, or ``up`` and a test, must not pip-install into one venv at once),
and a stamp written last says what it holds, so a half-finished install is redone and a
change of what is wanted (a version, the project's pyproject) triggers a reinstall.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import ServiceUnavailable

log = logging.getLogger(__name__)

INSTALL_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class PinnedVenv:
    """``label`` (e.g. "Airflow 3.3.2"), ``pip install <requirements>`` into ``root()``."""

    label: str
    root: Callable[[], Path]  # a function: the location may come from the environment
    requirements: Callable[[], list[str]]
    wanted: Callable[[], str]  # the stamp's text for what the venv must hold
    how_long: str = "about a minute"
    cwd: Path | None = None

    def python(self) -> Path:
        return self.root() / "bin" / "python"

    def _stamp(self) -> Path:
        return self.root() / "shoplake-installed.txt"

    def installed(self) -> bool:
        stamp = self._stamp()
        return self.python().exists() and stamp.exists() and stamp.read_text() == self.wanted()

    def ensure(self) -> str:
        """Create or update the venv (once; later calls return at once); one line saying what."""
        root = self.root()
        if self.installed():
            return f"{self.label} in {root}"
        root.parent.mkdir(parents=True, exist_ok=True)
        with (root.parent / f".{root.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.installed():
                return f"{self.label} in {root}"
            took = self._install()
        return f"{self.label} installed in {root} in {took:.0f} s"

    def _install(self) -> float:
        t0, root = time.monotonic(), self.root()
        log_path = root.parent / f"{root.name}-install.log"
        log.info(
            "installing %s into %s (%s, once); log %s", self.label, root, self.how_long, log_path
        )
        steps: list[list[str]] = []
        if not self.python().exists():
            # the base interpreter of whatever runs us (a venv's python makes a sibling venv)
            steps.append([sys.executable, "-m", "venv", str(root)])
        steps.append([str(self.python()), "-m", "pip", "install", "--quiet", *self.requirements()])
        with log_path.open("wb") as out:
            for cmd in steps:
                try:
                    subprocess.run(
                        cmd,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        check=True,
                        timeout=INSTALL_TIMEOUT_S,
                        cwd=self.cwd,
                    )
                except (OSError, subprocess.SubprocessError) as exc:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise ServiceUnavailable(
                        f"installing {self.label} failed ({exc}); log {log_path}:\n{tail}"
                    ) from exc
        self._stamp().write_text(self.wanted())
        return time.monotonic() - t0
