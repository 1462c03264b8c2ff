"""Engine archives unpack safely with or without Python's tar filters (3.11.4+)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest

from jobs.errors import ServiceUnavailable
from lite.services import engines


def archive(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 1):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size if kind == tarfile.REGTYPE else 0
    return info


@pytest.fixture(params=["with filters", "without filters"])
def python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "without filters":  # as Debian bookworm's Python 3.11.2
        monkeypatch.delattr(tarfile, "data_filter")
    return str(request.param)


def test_a_tree_with_hard_links_unpacks(tmp_path: Path, python: str) -> None:
    tar = archive(
        tmp_path / "a.tar", member("d/jar"), member("d/copy", tarfile.LNKTYPE, link="d/jar")
    )
    engines.unpack(tar, tmp_path / "out", "tar")
    assert (tmp_path / "out/d/copy").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("bad", "escape"),
    [
        (member("../evil"), "evil"),
        (member("d/up", tarfile.SYMTYPE, link="../../etc"), "etc"),
        (member("/abs-shoplake-test"), "/abs-shoplake-test"),
    ],
    ids=["parent", "symlink-out", "absolute"],
)
def test_nothing_lands_outside_the_target(
    tmp_path: Path, python: str, bad: tarfile.TarInfo, escape: str
) -> None:
    tar = archive(tmp_path / "b.tar", bad)
    # refused, or (the data filter, for a leading "/") made relative: never outside
    with contextlib.suppress(ServiceUnavailable, tarfile.FilterError):
        engines.unpack(tar, tmp_path / "out", "data")
    outside = Path(escape) if Path(escape).is_absolute() else tmp_path / escape
    assert not outside.exists()
    assert not (tmp_path / "out" / "d" / "up").is_symlink()
