"""Running a server as an unprivileged OS user when we are root (PostgreSQL refuses root).

The server runs as the system user ``shoplake`` with its own group and no supplementary
groups, so it gets none of root's group access. It must not need anything under the
caller's folders either (``/root`` is 0700, and so is any private checkout): what it runs
and writes lives under ``SERVICE_HOME``, a folder of its own: a root-owned copy of the
server binaries (read-only to it) and one private data folder per shoplake data dir.
Nothing of the caller's is opened to other users.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from jobs.errors import ServiceUnavailable

SERVICE_USER = "shoplake"
SERVICE_HOME = Path("/var/lib/shoplake")  # like /var/lib/postgresql: the system user's home
INSTANCES = "instances"
ORIGIN_FILE = "origin"  # in an instance folder: the service folder it belongs to


def needs_drop() -> bool:
    """True when we run as root and must hand servers to ``SERVICE_USER``."""
    return os.geteuid() == 0


def ensure_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """The OS user ``name`` (group of its own, no login), created as a system user if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    nologin = shutil.which("nologin") or "/usr/sbin/nologin"
    cmd = [
        *(useradd, "--system", "--user-group", "--no-create-home"),
        *("--home-dir", str(SERVICE_HOME), "--shell", nologin, name),
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        msg = (
            f"cannot create the OS user '{name}' that runs PostgreSQL for root ({exc}): "
            "create it yourself (useradd --system --user-group shoplake), run shoplake as an "
            "ordinary user, or point SHOPLAKE_SOURCE_DSN at an existing PostgreSQL"
        )
        raise ServiceUnavailable(msg) from exc
    return pwd.getpwnam(name)


def identity(name: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``name``: its uid, its own group only."""
    if name is None:
        return {}
    entry = pwd.getpwnam(name)
    if entry.pw_gid == 0:
        raise ServiceUnavailable(
            f"the OS user '{name}' has root's group as its primary group: give it a group "
            f"of its own (usermod -g {name} {name}) before shoplake runs a server as it"
        )
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def home() -> Path:
    """``SERVICE_HOME``, root's and traversable: the server reaches its own folders there."""
    SERVICE_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
    st = SERVICE_HOME.stat()
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ServiceUnavailable(
            f"{SERVICE_HOME} must belong to root and be writable by root only "
            f"(chown root: {SERVICE_HOME}; chmod 755 {SERVICE_HOME})"
        )
    return SERVICE_HOME


def server_copy(trees: dict[str, Path], label: str) -> Path:
    """A root-owned, world-readable copy of read-only ``trees`` (relative name: source).

    Made once under ``label``; the trees keep their relative places, so the binaries'
    ``$ORIGIN``-relative library paths still resolve.
    """
    target = home() / label
    if target.is_dir():
        return target
    staging = home() / f".{label}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for relative, source in trees.items():
        shutil.copytree(source, staging / relative, symlinks=True)
    for folder, dirs, files in os.walk(staging):
        for d in dirs:
            Path(folder, d).chmod(0o755)
        for f in files:
            p = Path(folder, f)
            if not p.is_symlink():
                p.chmod(0o755 if p.stat().st_mode & stat.S_IXUSR else 0o644)
    staging.chmod(0o755)
    try:
        staging.rename(target)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def instance_dir(service_home: Path) -> Path:
    """The folder that holds the data of one service folder (made by ``make_instance``)."""
    key = hashlib.sha256(str(service_home.resolve()).encode()).hexdigest()[:16]
    return SERVICE_HOME / INSTANCES / key


def make_instance(service_home: Path, owner: pwd.struct_passwd) -> Path:
    """``instance_dir``, created private (0700) to ``owner`` and labelled with its origin."""
    base = home() / INSTANCES
    base.mkdir(mode=0o711, exist_ok=True)
    folder = instance_dir(service_home)
    if not folder.exists():
        folder.mkdir(mode=0o700)
        (folder / ORIGIN_FILE).write_text(f"{service_home.resolve()}\n")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    return folder


def orphans() -> list[Path]:
    """Instance folders whose shoplake data dir was deleted (``make clean``, a test's tmp)."""
    base = SERVICE_HOME / INSTANCES
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        with contextlib.suppress(OSError):
            origin = Path((folder / ORIGIN_FILE).read_text().strip())
            if origin.is_absolute() and not origin.exists():
                found.append(folder)
    return found


def chown_tree(root: Path, entry: pwd.struct_passwd) -> None:
    """Give ``root`` and everything below it to the service user."""
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
