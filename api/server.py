"""Run the API with uvicorn (``shoplake serve``): one worker, loopback by default."""

from __future__ import annotations

from typing import Any

import uvicorn

from api.app import create_app
from jobs.errors import UsageError
from jobs.settings import Settings, is_known_default, is_loopback_host

# one worker, no access log: also what benchmarks/bench_api.py's "hello" baseline runs under
UVICORN_OPTIONS: dict[str, Any] = {
    "workers": 1,
    "access_log": False,
    "log_level": "info",
    "timeout_graceful_shutdown": 5,
}


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted; uvloop and httptools are used when installed."""
    if not is_loopback_host(host) and is_known_default(settings.api_token):
        raise UsageError(
            f"--host {host} serves the API beyond this host, and SHOPLAKE_API_TOKEN is a "
            "well-known default: set a real token (`shoplake services secrets` makes one)"
        )
    uvicorn.run(
        create_app(settings, freeze_gc=True),
        host=host,
        port=port,
        **UVICORN_OPTIONS,
    )
