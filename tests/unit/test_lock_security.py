"""No lock pins a version with a known vulnerability, and pyproject cannot resolve to one.

``FIRST_FIXED`` lists, per package, the first release that fixed the known CVEs (several
for a package fixed on more than one release line: a pin is safe at or above the fix of
its own line, or above the newest fix). A ``make lock`` that would regress fails here.
Add a row when an advisory appears; never lower one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from lite.locks import LOCKS
from tests.unit.test_locks import pins

ROOT = Path(__file__).resolve().parents[2]

FIRST_FIXED: dict[str, tuple[str, ...]] = {
    # CVE-2024-47874 (0.40.0), CVE-2025-54121 (0.47.2), CVE-2025-62727 (0.49.1)
    "starlette": ("0.49.1",),
    "jinja2": ("3.1.6",),  # CVE-2024-56201, CVE-2024-56326, CVE-2025-27516
    "requests": ("2.32.4",),  # CVE-2024-35195, CVE-2024-47081
    # CVE-2025-50181/50182 (2.5.0), CVE-2025-66418/66471 (2.6.0), CVE-2026-21441 (2.6.3)
    "urllib3": ("2.6.3",),
    "h11": ("0.16.0",),  # CVE-2025-43859
    # CVE-2024-24762 (0.0.7), CVE-2024-53981 (0.0.18), CVE-2026-24486 (0.0.22)
    "python-multipart": ("0.0.22",),
    "aiohttp": ("3.13.3",),  # CVE-2025-53643 (3.12.14) and the January 2026 batch (3.13.3)
    "tornado": ("6.5",),  # CVE-2025-47287
    # CVE-2023-47248 (14.0.1); CVE-2024-52338 (fixed in 17.0.0) is the Arrow R package's
    "pyarrow": ("14.0.1",),
    "werkzeug": ("3.1.4",),  # CVE-2024-49766/49767 (3.0.6), CVE-2025-66221 (3.1.4)
    "setuptools": ("78.1.1",),  # CVE-2025-47273
    "cryptography": ("44.0.1",),  # CVE-2024-12797
    "pyjwt": ("2.10.1",),  # CVE-2024-53861
    "idna": ("3.7",),  # CVE-2024-3651
    "certifi": ("2024.7.4",),  # CVE-2024-39689
    "zipp": ("3.19.1",),  # CVE-2024-5569
    "tqdm": ("4.66.3",),  # CVE-2024-34062
    "mako": ("1.2.2",),  # CVE-2022-40023
    "pygments": ("2.15.0",),  # CVE-2022-40896
    "pycryptodome": ("3.19.1",),  # CVE-2023-52323
    "fastapi": ("0.109.1",),  # CVE-2024-24762
    "redis": ("4.5.4",),  # CVE-2023-28858, CVE-2023-28859
    "pymongo": ("4.6.3",),  # CVE-2024-5629
    "httplib2": ("0.19.0",),  # CVE-2021-21240
    "python-socketio": ("5.14.0",),  # CVE-2025-61765
    "orjson": ("3.9.15",),  # CVE-2024-27454
    "dnspython": ("2.6.1",),  # CVE-2023-29483
    "pyyaml": ("5.4",),  # CVE-2020-14343
    "uv": ("0.8.6",),  # CVE-2025-54368
    "protobuf": ("4.25.8", "5.29.5", "6.31.1"),  # CVE-2025-4565, per release line
    # CVE-2024-7246, per release line
    "grpcio": ("1.58.3", "1.59.5", "1.60.2", "1.61.3", "1.62.3", "1.63.2", "1.64.3", "1.65.4"),
}
LOCK_FILES = sorted(p.name for p in LOCKS.glob("*.txt"))


def is_safe(version: str, fixes: tuple[str, ...]) -> bool:
    """At or above the fix of the version's own release line, or above every fix."""
    v = Version(version)
    for fix in map(Version, fixes):
        line = fix.release[:-1]
        if v.release[: len(line)] == line and v >= fix:
            return True
    return v >= max(map(Version, fixes))


def test_the_rule_for_release_lines() -> None:
    grpc = FIRST_FIXED["grpcio"]
    assert is_safe("1.65.5", grpc) and is_safe("1.70.0", grpc) and is_safe("1.64.3", grpc)
    assert not is_safe("1.65.1", grpc) and not is_safe("1.57.0", grpc)
    assert not is_safe("0.49.0", FIRST_FIXED["starlette"])


@pytest.mark.parametrize("lock", LOCK_FILES)
def test_no_lock_pins_a_known_vulnerable_version(lock: str) -> None:
    locked = pins(lock)
    bad = [
        f"{name}=={v} (first fixed: {', '.join(FIRST_FIXED[name])})"
        for name, versions in locked.items()
        if name in FIRST_FIXED
        for v in versions
        if not is_safe(v, FIRST_FIXED[name])
    ]
    assert not bad, f"{lock}: vulnerable pins {bad}: bump with `make lock` (see the Makefile)"


def lowest_allowed(req: Requirement) -> Version | None:
    """The smallest version the specifier admits by its >=, ==, ~= or > clauses (None: any)."""
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=", ">")]
    return max(floors) if floors else None


def test_pyproject_lower_bounds_exclude_vulnerable_versions() -> None:
    """A fresh resolution from pyproject (a user's pip install) cannot pick a vulnerable one."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    wanted = list(project["dependencies"]) + list(data["build-system"]["requires"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    too_low = []
    for req in map(Requirement, wanted):
        name = canonicalize_name(req.name)
        if name in FIRST_FIXED:
            floor = lowest_allowed(req)
            if floor is None or not is_safe(str(floor), FIRST_FIXED[name]):
                too_low.append(f"{req} (first fixed: {', '.join(FIRST_FIXED[name])})")
    assert not too_low, f"pyproject.toml allows vulnerable versions: {too_low}"
