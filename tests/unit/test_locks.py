"""The lock files under config/locks/ agree with what they lock: pyproject and the engine pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lite.locks import LOCKS
from lite.services.airflow import venv as airflow_venv
from lite.services.flink import venv as flink_venv

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def pins(lock: str) -> dict[str, set[str]]:
    """Package -> pinned versions (a universal lock may pin two, one per Python range)."""
    found: dict[str, set[str]] = {}
    for line in (LOCKS / lock).read_text().splitlines():
        m = PIN.match(line)
        if m:
            found.setdefault(canonicalize_name(m[1]), set()).add(m[2])
    return found


def project_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return [Requirement(r) for r in wanted]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("shoplake.txt", ("dev",)), ("airflow.txt", ())],
    ids=["project", "airflow"],
)
def test_every_project_requirement_is_pinned_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    locked = pins(lock)
    for req in project_requirements(*extras):
        versions = locked.get(canonicalize_name(req.name))
        assert versions, f"{req.name} is not in {lock}: run `make lock`"
        for v in versions:
            assert req.specifier.contains(v, prereleases=True), f"{lock}: {req.name}=={v} vs {req}"


def test_engine_locks_pin_the_versions_the_code_runs() -> None:
    assert pins("airflow.txt")["apache-airflow"] == {airflow_venv.AIRFLOW_VERSION}
    assert pins("pyflink.txt")["apache-flink"] == {flink_venv.FLINK_VERSION}


def test_every_pin_carries_hashes() -> None:
    for lock in ("shoplake.txt", "airflow.txt", "pyflink.txt", "uv.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (LOCKS / lock).read_text())
        for entry in entries:
            if PIN.match(entry):
                assert "--hash=sha256:" in entry, f"{lock}: {entry.splitlines()[0]}"


def test_the_uv_bootstrap_is_the_locked_uv() -> None:
    assert pins("uv.txt") == {"uv": pins("shoplake.txt")["uv"]}
    bootstrap = (LOCKS / "uv.txt").read_text()
    assert set(re.findall(r"sha256:\w+", bootstrap)) <= set(
        re.findall(r"sha256:\w+", (LOCKS / "shoplake.txt").read_text())
    )


def test_venv_folders_are_keyed_by_their_lock_not_the_checkout() -> None:
    root = airflow_venv.venv_dir()
    assert root.name == f"airflow-{airflow_venv.AIRFLOW_VERSION}-{airflow_venv.VENV.digest()}"
    assert str(ROOT) not in str(root)
