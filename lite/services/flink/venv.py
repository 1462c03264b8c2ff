"""PyFlink's own virtual environment: ``apache-flink`` pinned, nothing of shoplake's inside.

PyFlink pins old libraries (apache-beam, pandas < 2.3, pyarrow < 21) that clash with the
project's, so it lives in a venv of its own outside the repository, installed from
``config/locks/pyflink.txt``. The wheel is a whole
Flink distribution (``pyflink/bin``, ``pyflink/lib``, ``pyflink/conf``): the standalone
cluster runs from it too, so Flink is never fetched twice. The job program that runs in
this venv imports only the standard library and pyflink.
"""

from __future__ import annotations

from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.pinned_venv import PinnedVenv

FLINK_VERSION = "2.2.1"

VENV = PinnedVenv(
    f"PyFlink {FLINK_VERSION}",
    f"pyflink-{FLINK_VERSION}",
    "pyflink.txt",
    "SHOPLAKE_PYFLINK_VENV",
    how_long="under a minute: ~350 MB of wheels",
)
venv_dir = VENV.root
python, installed, ensure = VENV.python, VENV.installed, VENV.ensure


def flink_home() -> Path:
    """The Flink distribution inside the wheel (``bin``, ``lib``, ``conf``, ``opt``)."""
    if not installed():
        raise ServiceUnavailable(
            f"PyFlink {FLINK_VERSION} is not installed: run `shoplake services install --full`"
        )
    found = [p / "pyflink" for p in VENV.site_packages() if (p / "pyflink").is_dir()]
    if not found or not (found[0] / "lib").is_dir():
        raise ServiceUnavailable(f"no Flink distribution under {venv_dir()} (reinstall it)")
    return found[0]
