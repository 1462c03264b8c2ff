"""Where shoplake keeps what it fetches and builds, outside any checkout."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Engines live outside the repository: ``${XDG_CACHE_HOME:-~/.cache}/shoplake``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shoplake"
