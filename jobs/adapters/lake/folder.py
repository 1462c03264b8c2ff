"""The lake in a local folder: ``<root>/<bucket>/<key>``, atomic by rename."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import duckdb

from jobs.adapters.lake.base import Lake
from jobs.adapters.lake.layout import STAGING_PREFIX
from jobs.errors import ServiceUnavailable
from jobs.settings import LAKE_BUCKETS


class FolderLake(Lake):
    """Buckets are sub-folders of ``root``; writes go to a temp name, then ``os.replace``."""

    kind = "folder"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FolderLake({str(self.root)!r})"

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def uri(self, bucket: str, key: str) -> str:
        return str(self._path(bucket, key))

    def writable_uri(self, bucket: str, key: str) -> str:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # same directory, so os.replace is a rename within one file system: atomic
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        path = self._path(bucket, key)
        if not path.is_file():
            raise FileNotFoundError(f"{bucket}/{key}")
        return path.read_bytes()

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def modified(self, bucket: str, key: str) -> dt.datetime | None:
        try:
            mtime = self._path(bucket, key).stat().st_mtime
        except FileNotFoundError:
            return None
        return dt.datetime.fromtimestamp(mtime, dt.UTC)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        base = self.root / bucket
        # walk only the folder the prefix lies in, not the whole bucket
        start = base / prefix.rpartition("/")[0]
        # os.walk skips a folder that disappears while it walks (another step publishing its
        # staged files and pruning their folders); Path.rglob raised FileNotFoundError
        keys = (
            Path(folder, name).relative_to(base).as_posix()
            for folder, _, names in os.walk(start)
            for name in names
        )
        return sorted(k for k in keys if k.startswith(prefix) and not _is_temp(k))

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)
        self._prune_staging(bucket, key)

    def promote(self, bucket: str, src_key: str, dst_key: str) -> None:
        dst = self._path(bucket, dst_key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(bucket, src_key), dst)
        self._prune_staging(bucket, src_key)

    def _prune_staging(self, bucket: str, key: str) -> None:
        """Remove the folders a staged key leaves empty (as on S3, where there are none).

        Only below ``_staging/``: each run's folder there is its own, so no other writer is
        creating files in it meanwhile.
        """
        top = self.root / bucket / STAGING_PREFIX
        folder = self._path(bucket, key).parent
        while top in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone)
                return
            folder = folder.parent

    def check(self) -> None:
        try:
            for bucket in LAKE_BUCKETS:
                (self.root / bucket).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceUnavailable(f"lake folder {self.root} is not writable: {exc}") from None

    def configure_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Local files need nothing beyond DuckDB itself."""


def _is_temp(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(".") and key.endswith(".tmp")
