"""The local registry: one immutable folder per version and an ``aliases.json`` beside them.

Layout: ``<root>/<model>/v1/``, ``v2/``, ... and ``<root>/<model>/aliases.json``. A version
appears by renaming a complete staging folder, and aliases change by ``os.replace``, so a
reader never sees half a version or a torn alias file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobs.adapters.registry.base import ModelRegistry, PromotionPolicy
from jobs.adapters.registry.bundle_io import read_meta

VERSION_RE = re.compile(r"^v(\d+)$")


class LocalRegistry(ModelRegistry):
    """Versions in a folder (default ``<data dir>/registry``), same aliases as W&B."""

    backend = "local"

    def __init__(
        self, root: Path, policy: PromotionPolicy | None = None, name: str = "recommender"
    ) -> None:
        super().__init__(policy, name)
        self.home = Path(root) / name
        self.home.mkdir(parents=True, exist_ok=True)

    # ---- queries ----
    def versions(self) -> list[str]:
        """Every stored version, oldest first."""
        found = (VERSION_RE.match(p.name) for p in self.home.iterdir() if p.is_dir())
        return [f"v{n}" for n in sorted(int(m.group(1)) for m in found if m)]

    def aliases(self) -> dict[str, str]:
        path = self.home / "aliases.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def resolve(self, ref: str) -> str | None:
        version = self.aliases().get(ref, ref)
        return version if VERSION_RE.match(version) and (self.home / version).is_dir() else None

    def meta(self, ref: str) -> dict[str, Any] | None:
        version = self.resolve(ref)
        return read_meta(self.home / version) if version else None

    # ---- changes ----
    def set_alias(self, alias: str, version: str) -> None:
        if not (self.home / version).is_dir():
            raise KeyError(f"no version {version} of {self.name}")
        with self._lock():
            self._write_aliases(self.aliases() | {alias: version})

    def _store(self, folder: Path, meta: dict[str, Any], aliases: list[str]) -> str:
        with self._lock():
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.home))
            for item in folder.iterdir():
                shutil.copy2(item, staging / item.name)
            numbers = [int(v[1:]) for v in self.versions()]
            version = f"v{max(numbers, default=0) + 1}"
            os.rename(staging, self.home / version)
            self._write_aliases(self.aliases() | dict.fromkeys(aliases, version))
        return version

    def _fetch(self, ref: str, dest: Path) -> tuple[str, Path]:
        version = self.resolve(ref)
        if version is None:
            raise KeyError(f"no version or alias '{ref}' of {self.name} in {self.home}")
        return version, self.home / version  # versions are immutable: read in place

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        tmp = self.home / f".aliases-{os.getpid()}.json"
        tmp.write_text(json.dumps(aliases, indent=2, sort_keys=True))
        os.replace(tmp, self.home / "aliases.json")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # two trainings at once must not both take the same version number
        with open(self.home / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
