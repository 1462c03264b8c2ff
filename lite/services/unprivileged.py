"""Running a server as an unprivileged OS user when we are root (PostgreSQL refuses root)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

from jobs.errors import ServiceUnavailable

SERVICE_USER = "shoplake"


def needs_drop() -> bool:
    """True when we run as root and must hand servers to ``SERVICE_USER``."""
    return os.geteuid() == 0


def ensure_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """The OS user ``name``, created as a system user without a login shell if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    nologin = shutil.which("nologin") or "/usr/sbin/nologin"
    cmd = [useradd, "--system", "--no-create-home", "--shell", nologin, name]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        msg = f"cannot create the OS user '{name}' to run PostgreSQL: {exc}"
        raise ServiceUnavailable(msg) from exc
    return pwd.getpwnam(name)


def grant_traverse(path: Path) -> None:
    """Let other users traverse every ancestor of ``path`` (adds o+x only where missing)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def grant_read_tree(root: Path) -> None:
    """Make a read-only tree (the server binaries) readable by other users where it is not."""
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            _add_bits(Path(folder, d), stat.S_IROTH | stat.S_IXOTH)
        for f in files:
            p = Path(folder, f)
            bits = stat.S_IROTH | (stat.S_IXOTH if p.stat().st_mode & stat.S_IXUSR else 0)
            _add_bits(p, bits)


def chown_tree(root: Path, entry: pwd.struct_passwd) -> None:
    """Give ``root`` and everything below it to the service user."""
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _add_bits(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits and not path.is_symlink():
        path.chmod(mode | bits)
