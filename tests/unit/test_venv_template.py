"""``make install``'s cached venv: keyed by the locks' content, hard links, paths fixed."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from lite import venv_template as vt

ROOT = Path(__file__).resolve().parents[2]


def locks_copy(where: Path) -> Path:
    where.mkdir(parents=True)
    for name in vt.LOCK_FILES:
        shutil.copy(vt.LOCKS / name, where / name)
    return where


def test_the_key_is_the_locks_content_and_the_interpreter_not_the_checkout(tmp_path: Path) -> None:
    a, b = locks_copy(tmp_path / "a"), locks_copy(tmp_path / "b")
    assert vt.digest(a) == vt.digest(b) == vt.digest()
    (b / "shoplake.txt").write_text((b / "shoplake.txt").read_text() + "\n# changed\n")
    assert vt.digest(b) != vt.digest(a)
    folder = vt.template_dir(vt.digest(a))
    assert folder.name.startswith("venv-py3.") and str(ROOT) not in str(folder)


def fake_template(root: Path) -> Path:
    """What a venv made by ``python -m venv`` and uv looks like, in small."""
    (root / "bin").mkdir(parents=True)
    site = root / "lib" / "python3.11" / "site-packages"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("X = 1\n")
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00pyc" + bytes(8))
    (root / "pyvenv.cfg").write_text(
        f"home = /usr/bin\nversion = 3.11.7\ncommand = /usr/bin/python3 -m venv {root}\n"
    )
    (root / "bin" / "tool").write_text(f"#!{root}/bin/python\nimport sys\n")
    (root / "bin" / "activate").write_text(f'VIRTUAL_ENV="{root}"\nexport VIRTUAL_ENV\n')
    (root / "bin" / "native").write_bytes(b"\x7fELF\x00\x00" + str(root).encode())
    (root / "bin" / "tool").chmod(0o755)
    os.symlink(sys.executable, root / "bin" / "python")
    os.symlink("python", root / "bin" / "python3")
    (root / vt.STAMP).write_text("abc\n")
    return root


def test_a_copy_links_every_file_and_rewrites_only_what_names_the_template(
    tmp_path: Path,
) -> None:
    template = fake_template(tmp_path / "cache" / "venv-py3.11-abc")
    before = {p: p.read_bytes() for p in template.rglob("*") if p.is_file() and not p.is_symlink()}
    target = tmp_path / "clone" / ".venv"
    target.parent.mkdir()
    changed = vt.copy(template, target)
    assert changed == 3  # pyvenv.cfg, the script's #! line, activate
    site = "lib/python3.11/site-packages/pkg"
    pyc = f"{site}/__pycache__/__init__.cpython-311.pyc"
    for rel in (f"{site}/__init__.py", pyc, "bin/native"):
        assert (target / rel).stat().st_ino == (template / rel).stat().st_ino, rel
    assert (target / "bin" / "tool").read_text().startswith(f"#!{target}/bin/python\n")
    assert os.access(target / "bin" / "tool", os.X_OK)
    assert f"venv {target}" in (target / "pyvenv.cfg").read_text()
    assert str(template) not in (target / "bin" / "activate").read_text()
    assert os.readlink(target / "bin" / "python") == sys.executable
    assert os.readlink(target / "bin" / "python3") == "python"
    assert not (target / vt.STAMP).exists()
    # the template itself is untouched
    after = {p: p.read_bytes() for p in before}
    assert after == before


def test_a_long_path_gets_the_sh_trampoline_pip_and_uv_write() -> None:
    long = Path("/" + "d" * 150) / ".venv" / "bin" / "python"
    line = vt.shebang(long).decode()
    assert line.startswith("#!/bin/sh\n'''exec' '/ddd") and line.endswith("' '''")
    assert vt.shebang(Path("/a/.venv/bin/python")) == b"#!/a/.venv/bin/python"


def test_make_builds_into_a_partial_folder_and_renames_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = fake_template(tmp_path / "cache" / "venv-py3.11-abc")
    monkeypatch.setattr(vt, "digest", lambda locks=None: "abc")
    monkeypatch.setattr(vt, "ensure", lambda key, locks=None: template)
    target = tmp_path / "clone" / ".venv"
    target.parent.mkdir()
    line = vt.make(target)
    assert str(template) in line and target.is_dir()
    assert (target / "bin" / "tool").read_text().startswith(f"#!{target}/bin/python\n")
    assert [p.name for p in target.parent.iterdir()] == [".venv"]
    # an existing venv is updated in place by make install, never replaced
    with pytest.raises(vt.NotPossible, match="exists"):
        vt.make(target)
    assert vt.main([str(target)]) == vt.NOT_POSSIBLE


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPLAKE_VENV_CACHE", "0")
    with pytest.raises(vt.NotPossible, match="SHOPLAKE_VENV_CACHE=0"):
        vt.make(tmp_path / ".venv")


def test_a_template_with_its_stamp_is_not_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built: list[Path] = []

    def build(template: Path, key: str, locks: Path = vt.LOCKS) -> None:
        built.append(template)
        template.mkdir(parents=True)
        (template / vt.STAMP).write_text(key + "\n")

    monkeypatch.setattr(vt, "build", build)
    first = vt.ensure("k1")
    assert vt.ensure("k1") == first and built == [first]
    assert first.is_relative_to(tmp_path / "shoplake")
    (first / vt.STAMP).write_text("half\n")  # a build that did not finish
    vt.ensure("k1")
    assert len(built) == 2
