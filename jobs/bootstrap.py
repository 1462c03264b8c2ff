"""Builds the adapters for a Settings object: the one place that picks backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from jobs.adapters.lake import FolderLake, Lake, S3Lake
from jobs.settings import Settings


def _folder_lake(settings: Settings) -> Lake:
    uri = settings.lake_uri
    return FolderLake(Path(uri.removeprefix("file://")))


# backend name -> factory; the embedded folder lake needs no service at all
LAKES: dict[str, Callable[[Settings], Lake]] = {
    "s3": S3Lake.from_settings,
    "folder": _folder_lake,
}


def lake_kind(settings: Settings) -> str:
    """Which lake backend the settings select."""
    return "s3" if settings.lake_is_s3 else "folder"


def lake_for(settings: Settings) -> Lake:
    """The lake the settings point at (S3 for ``s3://``, else a folder)."""
    return LAKES[lake_kind(settings)](settings)
