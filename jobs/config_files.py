"""The repository's ``config/`` folder: engine configuration shared by native services and the
compose files. The one place that knows where it is."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def config_path(*parts: str) -> Path:
    """A file or folder under ``config/`` (``config_path("kafka", "debezium-postgres.json")``)."""
    return CONFIG_DIR.joinpath(*parts)
