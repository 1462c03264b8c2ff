"""The lock files under ``config/locks/`` and the uv that installs them (``make lock``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable

REPO = Path(__file__).resolve().parents[1]
LOCKS = config_path("locks")


def uv_binary() -> str:
    """The uv that ``make install`` put beside this interpreter (else one on PATH)."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise ServiceUnavailable("uv is not installed: run `make install` (it pins uv)")
    return found


def uv_env() -> dict[str, str]:
    """uv's environment: the platform's certificate store, as pip uses it."""
    # a network that re-signs TLS adds its CA to the system store, which pip reads
    # through its config; uv reads it only when asked
    return {"UV_SYSTEM_CERTS": "1", **os.environ}
