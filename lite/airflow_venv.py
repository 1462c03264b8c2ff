"""Airflow's own virtual environment: ``apache-airflow`` pinned, shoplake installed editable.

Airflow pins libraries (SQLAlchemy, FastAPI, Starlette...) that need not match the
project's, so it gets a venv of its own outside the repository, keyed by the Airflow
version and the checkout it serves (an editable install points at one checkout).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lite import airflow_site
from lite.pinned_venv import PinnedVenv
from lite.services.engines import cache_dir

AIRFLOW_VERSION = "3.3.2"
REPO = Path(__file__).resolve().parents[1]


def venv_dir() -> Path:
    """``SHOPLAKE_AIRFLOW_VENV``, else ``~/.cache/shoplake/airflow-<version>-<checkout hash>``."""
    chosen = os.environ.get("SHOPLAKE_AIRFLOW_VENV")
    if chosen:
        return Path(chosen).expanduser()
    checkout = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    return cache_dir() / f"airflow-{AIRFLOW_VERSION}-{checkout}"


def bin_dir() -> Path:
    return venv_dir() / "bin"


def _wanted() -> str:
    # the project's dependencies change with pyproject.toml: reinstall when it does
    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    return f"apache-airflow=={AIRFLOW_VERSION} shoplake@{REPO} pyproject {pyproject}\n"


VENV = PinnedVenv(
    f"Airflow {AIRFLOW_VERSION}",
    venv_dir,
    lambda: [f"apache-airflow=={AIRFLOW_VERSION}", "-e", str(REPO)],
    _wanted,
    cwd=REPO,
)
python, installed = VENV.python, VENV.installed
SITE_HOOK = "zz-shoplake-airflow-site.pth"  # after the editable install's own .pth


def ensure() -> str:
    """The venv (created once), with ``lite.airflow_site``'s start-up hook in place."""
    done = VENV.ensure()
    for site_packages in venv_dir().glob("lib/python3*/site-packages"):
        hook = site_packages / SITE_HOOK
        if not hook.exists() or hook.read_text() != airflow_site.PTH_LINE:
            hook.write_text(airflow_site.PTH_LINE)
    return done
