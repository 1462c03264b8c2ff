"""Per-installation credentials, generated once into a folder of owner-only files.

A container platform has no user to type passwords in: a one-shot container writes them
to a volume the other containers mount, and ``get_settings`` reads them from there
(``SHOPLAKE_SECRETS_DIR``, one file per setting). Nothing here is ever printed.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from jobs.settings import Settings

log = logging.getLogger(__name__)

# the settings that guard a service reachable from other containers
GENERATED = ("pg_password", "s3_secret_key", "redis_password", "api_token")


def secret_file(folder: Path, setting: str) -> Path:
    return folder / f"shoplake_{setting}"


def generate(folder: Path, wanted: tuple[str, ...] = GENERATED) -> list[str]:
    """Write a random value for each missing secret (mode 0600); the settings written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    written = []
    for setting in wanted:
        path = secret_file(folder, setting)
        if path.exists() and path.stat().st_size:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
        written.append(setting)
    return written


def private_data_dir(settings: Settings) -> Path:
    """The data dir, owner-only: it holds the services' data, logs, secrets and configs.

    Created 0700; an existing one open to others (an earlier shoplake made it with the
    default umask) is closed, saying so.
    """
    path = settings.data_path
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        path.chmod(mode & 0o700)
        log.warning("%s was open to other users (mode %o): now owner-only", path, mode)
    return path


def ensure_installation(settings: Settings) -> list[str]:
    """Generate the passwords of this installation's native PostgreSQL and Redis once.

    They live in ``<data dir>/secrets`` (0700, files 0600); ``settings`` picks them up in
    place, and every later process reads them from there (``Settings`` does). Returns the
    settings generated now (names only: the values are never shown).
    """
    private_data_dir(settings)
    wanted = tuple(f for f in settings.installation_secrets() if getattr(settings, f) is None)
    if not wanted:
        return []
    written = generate(settings.installation_secret_file(wanted[0]).parent, wanted)
    settings.with_installation_secrets()
    return written
