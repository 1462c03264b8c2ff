"""Airflow's own virtual environment: ``apache-airflow`` pinned, with shoplake's dependencies.

Airflow pins libraries (SQLAlchemy, FastAPI, Starlette...) that need not match the
project's, so it gets a venv of its own outside the repository, installed from
``config/locks/airflow.txt`` (Airflow plus the libraries the DAG tasks import). shoplake
itself is not installed there: ``lite.services.airflow.config`` puts the checkout on PYTHONPATH,
so every checkout with the same lock shares one venv.
"""

from __future__ import annotations

from lite.pinned_venv import REPO, PinnedVenv
from lite.services.airflow import site as airflow_site

AIRFLOW_VERSION = "3.3.2"

VENV = PinnedVenv(
    f"Airflow {AIRFLOW_VERSION}",
    f"airflow-{AIRFLOW_VERSION}",
    "airflow.txt",
    "SHOPLAKE_AIRFLOW_VENV",
    how_long="30-90 s",
)
python, installed, venv_dir, bin_dir = VENV.python, VENV.installed, VENV.root, VENV.bin_dir
SITE_HOOK = "zz-shoplake-airflow-site.pth"

__all__ = ["AIRFLOW_VERSION", "REPO", "bin_dir", "ensure", "installed", "python", "venv_dir"]


def ensure() -> str:
    """The venv (created once), with ``lite.services.airflow.site``'s start-up hook in place."""
    done = VENV.ensure()
    for site_packages in VENV.site_packages():
        hook = site_packages / SITE_HOOK
        if not hook.exists() or hook.read_text() != airflow_site.PTH_LINE:
            hook.write_text(airflow_site.PTH_LINE)
    return done
