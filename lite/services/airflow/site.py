"""Runs inside Airflow's own venv: keeps Airflow's log servers on the loopback interface.

Airflow 3.3.2 hard-codes the host of the log servers its scheduler and triggerer start
(``airflow.utils.serve_logs.core`` runs uvicorn with ``host=""``: every interface). A
``.pth`` file that ``lite.services.airflow.venv`` writes into the venv calls ``install`` at each
interpreter start; when ``SHOPLAKE_AIRFLOW_BIND_HOST`` is set (``lite.services.airflow.config`` sets
127.0.0.1 for the native service), uvicorn servers asked for every interface bind that host
instead. ``loopback_hostname`` is Airflow's ``hostname_callable`` there, so the API server
asks that same address for a running task's log.

Only the standard library at import: this module loads in every process of the venv.
"""

from __future__ import annotations

import functools
import os
from typing import Any

BIND_HOST_ENV = "SHOPLAKE_AIRFLOW_BIND_HOST"
EVERY_INTERFACE = ("", "0.0.0.0", "::")
# the venv is shared by every checkout with the same lock, and the checkout reaches it
# through PYTHONPATH: without that (a user running the venv's python by hand), or from a
# checkout of the older layout (``lite/services/airflow.py`` a module), do nothing
PTH_LINE = (
    "import importlib.util as _u; "
    "_u.find_spec('lite') and "
    "getattr(_u.find_spec('lite.services.airflow'), 'submodule_search_locations', None) and "
    "__import__('lite.services.airflow.site', fromlist=['install']).install()\n"
)


def install() -> None:
    """Wrap ``uvicorn.run`` so that a server asked for every interface binds the set host."""
    host = os.environ.get(BIND_HOST_ENV)
    if not host:
        return
    try:
        import uvicorn
    except ImportError:  # not Airflow's venv after all: nothing to keep in
        return
    real = uvicorn.run
    if getattr(real, "shoplake_bind_host", None):
        return

    @functools.wraps(real)
    def run(app: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("host") in EVERY_INTERFACE:
            kwargs["host"] = host
        return real(app, *args, **kwargs)

    run.shoplake_bind_host = host  # type: ignore[attr-defined]
    uvicorn.run = run


def loopback_hostname() -> str:
    """The address this host's Airflow components announce (``[core] hostname_callable``)."""
    return os.environ.get(BIND_HOST_ENV) or "127.0.0.1"
