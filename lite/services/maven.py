"""Fetching engine artifacts by Maven coordinates into the shoplake cache (Trino, Kafka, Flink).

Maven resolves the artifacts (its own local repository also caches them); this module copies
them into ``${XDG_CACHE_HOME:-~/.cache}/shoplake/<engine>`` so that engines run from a folder
outside the repository and a second fetch is a no-op.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.services.engines import cache_dir

log = logging.getLogger(__name__)

# pinned: the default plugin Maven picks (2.8) ignores -Dtransitive and is slow to resolve
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Artifact:
    """``group:artifact:version[:type[:classifier]]`` and the file name Maven gives it."""

    group: str
    artifact: str
    version: str
    type: str = "jar"
    classifier: str = ""

    @classmethod
    def parse(cls, coordinate: str) -> Artifact:
        parts = coordinate.split(":")
        if not 3 <= len(parts) <= 5 or not all(parts):
            raise ValueError(f"not a Maven coordinate g:a:v[:type[:classifier]]: {coordinate!r}")
        return cls(*parts)

    @property
    def coordinate(self) -> str:
        extra = [self.type, self.classifier] if self.classifier else [self.type]
        return ":".join([self.group, self.artifact, self.version, *extra])

    @property
    def filename(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.{self.type}"


def engine_dir(engine: str) -> Path:
    """Where one engine's artifacts live: ``<cache>/shoplake/<engine>``."""
    return cache_dir() / engine


def mvn() -> str:
    """The ``mvn`` executable, or a one-line error saying how to get it."""
    found = shutil.which("mvn")
    if found is None:
        raise ServiceUnavailable("fetching engines needs Maven: install it (apt-get install maven)")
    return found


def _run(args: list[str], log_file: Path, cwd: Path | None = None) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:
        try:
            subprocess.run(
                [mvn(), "-B", "-ntp", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=TIMEOUT_S,
                cwd=cwd,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            errors = [
                ln
                for ln in log_file.read_text(errors="replace").splitlines()
                if ln.startswith("[ERROR]")
            ][:3]
            detail = "\n".join(errors) or str(exc)
            raise ServiceUnavailable(
                f"mvn failed ({type(exc).__name__}); log {log_file}:\n{detail}"
            ) from exc


def fetch(coordinate: str, dest: Path) -> Path:
    """One artifact (no dependencies) copied into ``dest``; skipped when it is already there."""
    art = Artifact.parse(coordinate)
    target = dest / art.filename
    if target.exists():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s with mvn into %s", art.coordinate, dest)
    # copy into a scratch folder first: an interrupted copy never looks complete
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        _run(
            [
                f"{DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={art.coordinate}",
                f"-DoutputDirectory={tmp}",
                "-Dmdep.overWriteReleases=true",
            ],
            dest / f".{art.artifact}-fetch.log",
        )
        (Path(tmp) / art.filename).replace(target)
    return target


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>shoplake.fetch</groupId><artifactId>{name}</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def _dependency_xml(art: Artifact) -> str:
    classifier = f"<classifier>{art.classifier}</classifier>" if art.classifier else ""
    return (
        f"    <dependency><groupId>{art.group}</groupId><artifactId>{art.artifact}"
        f"</artifactId><version>{art.version}</version><type>{art.type}</type>"
        f"{classifier}</dependency>"
    )


def fetch_with_dependencies(name: str, coordinates: list[str], dest: Path) -> list[Path]:
    """Artifacts plus their runtime dependencies into ``dest`` (a ``libs/`` folder), once.

    A throw-away POM and ``dependency:copy-dependencies``, as projects do to run a
    broker without its tarball; ``dest/.complete`` lists the coordinates it holds.
    """
    arts = [Artifact.parse(c) for c in coordinates]
    stamp = dest / ".complete"
    wanted = "\n".join(a.coordinate for a in arts) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return sorted(p for p in dest.iterdir() if not p.name.startswith("."))
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(POM.format(name=name, deps="\n".join(map(_dependency_xml, arts))))
        out = Path(tmp) / "libs"
        _run(
            [
                "-f",
                str(pom),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ],
            dest.parent / f".{name}-fetch.log",
        )
        shutil.rmtree(dest)
        out.replace(dest)
    stamp.write_text(wanted)
    return sorted(p for p in dest.iterdir() if not p.name.startswith("."))
