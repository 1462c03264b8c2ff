"""Run the API with uvicorn (``shoplake serve``): one worker, loopback by default."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from jobs.settings import Settings


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until interrupted; uvloop and httptools are used when installed."""
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
