"""PyFlink's own virtual environment: ``apache-flink`` pinned, nothing of shoplake's inside.

PyFlink pins old libraries (apache-beam, pandas < 2.3, pyarrow < 21) that clash with the
project's, so it lives in a venv of its own outside the repository. The wheel is a whole
Flink distribution (``pyflink/bin``, ``pyflink/lib``, ``pyflink/conf``): the standalone
cluster runs from it too, so Flink is never fetched twice. The job program that runs in
this venv imports only the standard library and pyflink.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.pinned_venv import PinnedVenv
from lite.services.engines import cache_dir

FLINK_VERSION = "2.2.1"


def venv_dir() -> Path:
    """``SHOPLAKE_PYFLINK_VENV``, else ``~/.cache/shoplake/pyflink-<version>``."""
    chosen = os.environ.get("SHOPLAKE_PYFLINK_VENV")
    if chosen:
        return Path(chosen).expanduser()
    return cache_dir() / f"pyflink-{FLINK_VERSION}"


VENV = PinnedVenv(
    f"PyFlink {FLINK_VERSION}",
    venv_dir,
    lambda: [f"apache-flink=={FLINK_VERSION}"],
    lambda: f"apache-flink=={FLINK_VERSION}\n",
    how_long="under a minute to a few minutes: ~350 MB",
)
python, installed, ensure = VENV.python, VENV.installed, VENV.ensure


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
