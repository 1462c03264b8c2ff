"""Per-installation credentials, generated once into a folder of owner-only files.

A container platform has no user to type passwords in: a one-shot container writes them
to a volume the other containers mount, and ``get_settings`` reads them from there
(``SHOPLAKE_SECRETS_DIR``, one file per setting). Nothing here is ever printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# the settings that guard a service reachable from other containers
GENERATED = ("pg_password", "s3_secret_key", "redis_password", "api_token")


def secret_file(folder: Path, setting: str) -> Path:
    return folder / f"shoplake_{setting}"


def generate(folder: Path) -> list[str]:
    """Write a random value for each missing secret (mode 0600); the settings written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for setting in GENERATED:
        path = secret_file(folder, setting)
        if path.exists() and path.stat().st_size:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
        written.append(setting)
    return written
