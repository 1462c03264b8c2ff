"""Finding a JDK for each Java engine: Kafka and Flink want 17 (or 21), Trino 24 or newer.

One rule for all of them: the engine's own ``SHOPLAKE_<ENGINE>_JAVA_HOME``, then ``JAVA_HOME``,
then the JDKs under ``/usr/lib/jvm`` (and the ``java`` on PATH) in the engine's order of
preference; the first whose ``release`` file names an accepted major version wins.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from jobs.errors import ServiceUnavailable

JVM_DIRS = Path("/usr/lib/jvm")


def java_major(home: Path) -> int:
    """The major version a JDK's ``release`` file names (0 when it names none)."""
    try:
        release = (home / "release").read_text()
    except OSError:
        return 0
    found = re.search(r'^JAVA_VERSION="(\d+)', release, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _candidates(jvm_dirs: Path) -> list[Path]:
    found = [h for h in jvm_dirs.glob("*") if not h.is_symlink()] if jvm_dirs.is_dir() else []
    java = shutil.which("java")
    if java is not None:
        found.append(Path(java).resolve().parents[1])
    return sorted(found)


def find_java_home(
    engine: str, majors: Sequence[int], hint: str, jvm_dirs: Path = JVM_DIRS
) -> Path:
    """The JDK for ``engine``: a named one first, else the first of ``majors`` installed.

    ``majors`` is the order of preference; ``hint`` ends the one-line error when none fits.
    """
    override = f"SHOPLAKE_{engine.upper()}_JAVA_HOME"
    named = [Path(p) for p in (os.environ.get(override), os.environ.get("JAVA_HOME")) if p]
    for home in named:
        if java_major(home) in majors and (home / "bin" / "java").exists():
            return home
    found = [h for h in _candidates(jvm_dirs) if (h / "bin" / "java").exists()]
    for major in majors:
        for home in found:
            if java_major(home) == major:
                return home
    raise ServiceUnavailable(f"{engine} needs Java {hint}: install one or set {override}")
