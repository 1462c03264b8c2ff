"""One JDK finder for the Java engines: each engine's accepted versions, in its order."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ServiceUnavailable
from lite.services import kafka
from lite.services.flink import service as flink
from lite.services.java import find_java_home, java_major


def _jdk(root: Path, version: str) -> Path:
    home = root / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").touch()
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return home


@pytest.fixture
def jvms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for engine in ("TRINO", "FLINK", "KAFKA"):
        monkeypatch.delenv(f"SHOPLAKE_{engine}_JAVA_HOME", raising=False)
    for name in ("JAVA_HOME",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("shutil.which", lambda _name: None)  # only the fake JDKs count
    for version in ("11.0.2", "17.0.15", "21.0.2", "25.0.3"):
        _jdk(tmp_path, version)
    return tmp_path


def test_each_engine_gets_its_preferred_jdk(jvms: Path) -> None:
    assert java_major(jvms / "jdk-25.0.3") == 25
    newest_first = tuple(range(40, 23, -1))
    assert find_java_home("trino", newest_first, "24+", jvms).name == "jdk-25.0.3"
    assert find_java_home("flink", flink.JAVA_MAJORS, "17", jvms).name == "jdk-17.0.15"
    # Kafka never takes Trino's Java 25, even as JAVA_HOME
    assert find_java_home("kafka", kafka.JAVA_MAJORS, "17", jvms).name == "jdk-17.0.15"


def test_a_named_jdk_wins_only_when_the_engine_accepts_it(
    jvms: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(jvms / "jdk-25.0.3"))  # Trino's, not Flink's
    assert find_java_home("flink", (17, 21, 11), "17", jvms).name == "jdk-17.0.15"
    monkeypatch.setenv("SHOPLAKE_FLINK_JAVA_HOME", str(jvms / "jdk-21.0.2"))
    assert find_java_home("flink", (17, 21, 11), "17", jvms).name == "jdk-21.0.2"


def test_no_fitting_jdk_is_one_clear_error(jvms: Path) -> None:
    with pytest.raises(ServiceUnavailable, match=r"trino needs Java 99.*SHOPLAKE_TRINO_JAVA_HOME"):
        find_java_home("trino", (99,), "99", jvms)
