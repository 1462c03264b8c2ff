"""Every port and the time zone are Settings fields, checked when the settings load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobs.settings import Settings

PORTS = sorted(f for f in Settings.model_fields if f.endswith("_port"))


def build(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_the_ports_a_process_listens_on_are_all_settings() -> None:
    # the servers' and the processes `up` starts; Redis's is part of SHOPLAKE_REDIS_URL
    assert {
        "pg_port", "s3_port", "s3_console_port", "airflow_port", "dashboard_port", "api_port",
        "trino_port", "kafka_port", "kafka_controller_port", "connect_port", "flink_port",
        "flink_rpc_port",
    } == set(PORTS)  # fmt: skip


@pytest.mark.parametrize("field", PORTS)
@pytest.mark.parametrize("bad", [0, -1, 65536, 10**6])
def test_a_port_outside_1_to_65535_is_refused(field: str, bad: int) -> None:
    with pytest.raises(ValidationError, match=field):
        build(**{field: bad})


@pytest.mark.parametrize("field", PORTS)
def test_a_port_at_either_end_of_the_range_is_accepted(field: str) -> None:
    assert getattr(build(**{field: 1}), field) == 1
    assert getattr(build(**{field: 65535}), field) == 65535


@pytest.mark.parametrize(
    ("name", "field", "default"),
    [("SHOPLAKE_DASHBOARD_PORT", "dashboard_port", 8501), ("SHOPLAKE_API_PORT", "api_port", 8000)],
)
def test_the_dashboard_and_api_ports_keep_their_variables(
    monkeypatch: pytest.MonkeyPatch, name: str, field: str, default: int
) -> None:
    monkeypatch.delenv(name, raising=False)
    assert getattr(build(), field) == default
    monkeypatch.setenv(name, "18123")
    assert getattr(build(), field) == 18123
    monkeypatch.setenv(name, "not-a-port")
    with pytest.raises(ValidationError, match=field):
        build()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
def test_a_time_zone_that_exists_is_accepted(zone: str) -> None:
    assert build(timezone=zone).timezone == zone


@pytest.mark.parametrize("zone", ["", "Mars/Olympus_Mons", "Europe/berlin ", "../../etc/passwd"])
def test_a_time_zone_that_does_not_exist_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        build(timezone=zone)
