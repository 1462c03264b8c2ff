"""A virtual environment of its own for an engine that pins libraries the project cannot share.

Airflow and PyFlink each get one outside the repository, installed with uv from a lock file
committed under ``config/locks/`` (exact versions and hashes, so nothing is resolved on a
user's machine: no backtracking, the same packages every time). The folder is named after
the lock's digest, so every checkout with the same lock shares one venv and a changed lock
gets a new one. It is created once, under a file lock (two test sessions, or ``up`` and a
test, must not install into one venv at once), byte-compiled at install (a first start is
then as quick as later ones), and a stamp written last says what it holds, so a
half-finished install is redone.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.locks import LOCKS, REPO, uv_binary, uv_env
from lite.paths import cache_dir

log = logging.getLogger(__name__)

INSTALL_TIMEOUT_S = 1800.0


def base_python() -> str:
    """The interpreter a new venv is made from: the base of whatever runs us."""
    return getattr(sys, "_base_executable", None) or sys.executable


@dataclass(frozen=True)
class PinnedVenv:
    """``label`` (e.g. "Airflow 3.3.2"): the packages of ``config/locks/<lock>`` in a venv."""

    label: str
    name: str  # the folder's prefix under the engine cache, e.g. "airflow-3.3.2"
    lock: str  # file name under config/locks/
    override_env: str  # a variable that names the folder instead
    how_long: str = "under a minute"

    @property
    def lock_file(self) -> Path:
        return LOCKS / self.lock

    def sha256(self) -> str:
        return hashlib.sha256(self.lock_file.read_bytes()).hexdigest()

    def digest(self) -> str:
        return self.sha256()[:12]

    def root(self) -> Path:
        """``$<override_env>``, else ``~/.cache/shoplake/<name>-<lock digest>``."""
        chosen = os.environ.get(self.override_env)
        if chosen:
            return Path(chosen).expanduser()
        return cache_dir() / f"{self.name}-{self.digest()}"

    def python(self) -> Path:
        return self.root() / "bin" / "python"

    def bin_dir(self) -> Path:
        return self.root() / "bin"

    def site_packages(self) -> list[Path]:
        return sorted(self.root().glob("lib/python3*/site-packages"))

    def _stamp(self) -> Path:
        return self.root() / "shoplake-installed.txt"

    def wanted(self) -> str:
        # sha256sum's own format, so an image build can write the stamp with it
        return f"{self.sha256()}  {self.lock}\n"

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
            "installing %s into %s from %s (%s, once); log %s",
            self.label,
            root,
            self.lock_file.relative_to(REPO),
            self.how_long,
            log_path,
        )
        uv = uv_binary()
        steps: list[list[str]] = []
        if not self.python().exists():
            steps.append([uv, "venv", "--quiet", "--python", base_python(), str(root)])
        steps.append(
            [
                *(uv, "pip", "sync", "--python", str(self.python())),
                *("--require-hashes", "--compile-bytecode", str(self.lock_file)),
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
                        env=uv_env(),
                    )
                except (OSError, subprocess.SubprocessError) as exc:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise ServiceUnavailable(
                        f"installing {self.label} failed ({exc}); log {log_path}:\n{tail}"
                    ) from exc
        self._stamp().write_text(self.wanted())
        return time.monotonic() - t0
