"""``make install`` in a fresh clone: the project's ``.venv`` as hard links of a cached one.

Installing ``config/locks/shoplake.txt`` takes seconds, but byte-compiling it (what makes every
later start quick) takes 20-30 s on 2 cores, for every checkout. So the first install builds
a *template* venv once, keyed by the lock files' content and the interpreter
(``~/.cache/shoplake/venv-py3.11-<digest>``, like Airflow's venv), and a new ``.venv`` is a
tree of hard links to it (the compiled ``.pyc`` files included), made in a second or two.
Only what names the template's path is written anew: the scripts' ``#!`` lines, the
activation scripts and ``pyvenv.cfg``. uv itself installs by hard links to its cache, so
files shared between venvs are nothing new; installers replace files rather than write into
them, so a later change in one venv does not reach the others.

Runs with the system interpreter before any venv exists (standard library only):

    python3 -m lite.venv_template .venv     # exit 0: .venv made; 3: not possible here

``make install`` then installs the checkout itself (``uv pip install -e .``). Exit 3 (an
existing ``.venv``, the cache on another file system, ``SHOPLAKE_VENV_CACHE=0``) makes
``make install`` do what it did before: a venv of its own, synced and compiled.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from lite.paths import cache_dir

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "config" / "locks"
LOCK_FILES = ("uv.txt", "shoplake.txt")
STAMP = "shoplake-template.txt"
NOT_POSSIBLE = 3
SHEBANG_MAX = 127  # the kernel's limit on older systems; longer ones go through /bin/sh


def say(line: str, stream: TextIO = sys.stderr) -> None:
    """One line for ``make install``'s output (progress on stderr, the result on stdout)."""
    stream.write(line + "\n")
    stream.flush()


class NotPossible(Exception):
    """The template cannot be used here: ``make install`` installs the usual way."""


def base_python() -> str:
    """The interpreter the venvs are made from (the base of a venv that runs us)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def digest(locks: Path = LOCKS, python: str | None = None) -> str:
    """What the template holds: the lock files' bytes and the interpreter, hashed."""
    h = hashlib.sha256()
    for name in LOCK_FILES:
        h.update(name.encode() + b"\0" + (locks / name).read_bytes() + b"\0")
    exe = os.path.realpath(python or base_python())
    version = subprocess.run(
        [exe, "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    h.update(exe.encode() + b"\0" + version.encode())
    return h.hexdigest()[:12]


def template_dir(key: str) -> Path:
    return cache_dir() / f"venv-py{sys.version_info.major}.{sys.version_info.minor}-{key}"


def build(template: Path, key: str, locks: Path = LOCKS) -> None:
    """The venv from the locks, byte-compiled (what ``make install`` did in each checkout)."""
    python = base_python()
    bin_dir = template / "bin"
    steps = [
        [python, "-m", "venv", str(template)],
        [
            *(str(bin_dir / "pip"), "install", "--quiet", "--require-hashes", "--no-deps"),
            *("-r", str(locks / "uv.txt")),
        ],
        [
            *(str(bin_dir / "uv"), "pip", "sync", "--quiet", "--python", str(bin_dir / "python")),
            *("--require-hashes", "--compile-bytecode", str(locks / "shoplake.txt")),
        ],
    ]
    env = {"UV_SYSTEM_CERTS": "1", **os.environ}
    for cmd in steps:
        subprocess.run(cmd, check=True, env=env, timeout=1800)
    (template / STAMP).write_text(key + "\n")


def ensure(key: str, locks: Path = LOCKS) -> Path:
    """The template for ``key``, built once (under a file lock: two installs at once)."""
    template = template_dir(key)
    stamp = template / STAMP
    if stamp.exists() and stamp.read_text().strip() == key:
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    with (template.parent / f".{template.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text().strip() == key):
            if template.exists():
                shutil.rmtree(template)  # a half-built one: its stamp was never written
            t0 = time.monotonic()
            say(f"building the cached venv {template} (once per lock)")
            build(template, key, locks)
            say(f"built in {time.monotonic() - t0:.0f} s")
    return template


def shebang(python: Path) -> bytes:
    """A ``#!`` line for ``python``: plain when the kernel takes it, else through /bin/sh."""
    plain = f"#!{python}"
    if len(plain) <= SHEBANG_MAX and " " not in str(python):
        return plain.encode()
    # what pip and uv write for a long path: sh runs the line, Python reads a string
    return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''".encode()


def rewritten(data: bytes, old: Path, new: Path) -> bytes | None:
    """A script or text file of the template for the venv at ``new`` (None: link it)."""
    old_b, new_b = str(old).encode(), str(new).encode()
    if old_b not in data or b"\0" in data[:4096]:
        return None  # nothing to change, or a binary: a hard link
    if data.startswith(b"#!"):
        first, nl, rest = data.partition(b"\n")
        if first == b"#!" + old_b + b"/bin/python" or first.startswith(b"#!" + old_b + b"/"):
            interpreter = Path(first[2:].decode().replace(str(old), str(new)))
            data = shebang(interpreter) + nl + rest
    return data.replace(old_b, new_b)


def copy(template: Path, target: Path, final: Path | None = None) -> int:
    """``target`` as hard links of ``template``, for a venv that will live at ``final``
    (default ``target``); how many files were rewritten."""
    final = final or target
    changed = 0
    for dirpath, dirnames, filenames in os.walk(template):
        src_dir = Path(dirpath)
        dst_dir = target / src_dir.relative_to(template)
        dst_dir.mkdir(exist_ok=True)
        shutil.copymode(src_dir, dst_dir)
        for name in [*filenames, *(d for d in dirnames if (src_dir / d).is_symlink())]:
            if name == STAMP and src_dir == template:
                continue
            src, dst = src_dir / name, dst_dir / name
            if src.is_symlink():
                link = os.readlink(src)
                os.symlink(link.replace(str(template), str(final)), dst)
                continue
            # only the top (pyvenv.cfg) and bin/ name the venv's own path
            if src_dir == template or src_dir.name == "bin":
                data = src.read_bytes()
                new = rewritten(data, template, final)
                if new is not None:
                    dst.write_bytes(new)
                    shutil.copymode(src, dst)
                    changed += 1
                    continue
            try:
                os.link(src, dst)
            except OSError as exc:  # another file system (EXDEV), or links not allowed
                raise NotPossible(f"cannot hard-link {src} to {dst}: {exc}") from exc
    return changed


def make(target: Path, locks: Path = LOCKS) -> str:
    """A new venv at ``target`` from the cached template; one line saying what was done."""
    if os.environ.get("SHOPLAKE_VENV_CACHE", "1") == "0":
        raise NotPossible("SHOPLAKE_VENV_CACHE=0")
    target = target.absolute()
    if target.exists():
        raise NotPossible(f"{target} exists (it is updated in place)")
    key = digest(locks)
    template = ensure(key, locks)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    t0 = time.monotonic()
    try:
        copy(template, partial, final=target)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return f"{target} from the cached venv {template} in {time.monotonic() - t0:.1f} s"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        say("usage: python3 -m lite.venv_template VENV")
        return 2
    try:
        say(make(Path(argv[0])), sys.stdout)
    except NotPossible as exc:
        say(f"the cached venv is not used: {exc}; installing the usual way")
        return NOT_POSSIBLE
    except (OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(OSError):
            say(f"the cached venv failed ({exc}); installing the usual way")
        return NOT_POSSIBLE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
