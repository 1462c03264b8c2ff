"""compose.lite.yml cannot run here (no Docker engine): its structure is checked instead."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.settings import Settings
from lite import airflow_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.lite.yml"
SERVICES = {
    "postgres",
    "minio",
    "minio-buckets",
    "data-init",
    "redis",
    "airflow",
    "dashboard",
    "api",
    "wandb",
}
DEFAULT = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def settings_env_names() -> set[str]:
    """Every variable name Settings reads (its aliases, else SHOPLAKE_<FIELD>)."""
    return {airflow_config.env_name(f) for f in Settings.model_fields}


def interpolated(env: dict[str, Any]) -> dict[str, str]:
    """The environment as compose sees it with nothing set on the host (defaults only)."""
    return {k: DEFAULT.sub(lambda m: m.group(2) or "", str(v)) for k, v in env.items()}


def test_docker_compose_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)")
    out = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_the_lite_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    images = {name: svc["image"].split(":")[0] for name, svc in compose["services"].items()}
    assert images["airflow"] == "apache/airflow" and images["wandb"] == "wandb/local"
    assert compose["services"]["airflow"]["image"].startswith("apache/airflow:3.3.2")


def test_every_published_port_is_on_loopback(compose: dict[str, Any]) -> None:
    published = [p for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 8
    assert all(str(p).startswith("127.0.0.1:") for p in published), published


def test_the_env_names_are_settings_and_make_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["x-shoplake-env"]
    assert set(env) <= settings_env_names()
    values = interpolated(env)
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.lake_is_s3 and s.s3_endpoint_url == "http://minio:9000"
    assert s.dsn.startswith("postgresql://shoplake:") and "@postgres:5432/" in s.dsn
    assert s.registry_backend == "local"  # until a W&B key is set in .env
    for name in ("dashboard", "api"):
        assert compose["services"][name]["environment"] == env


def test_native_and_compose_share_the_configuration_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg_mounts = " ".join(services["postgres"]["volumes"])
    assert "./config/postgres/shoplake.conf:" in pg_mounts
    assert "config_file=/etc/postgresql/shoplake.conf" in services["postgres"]["command"]
    airflow = services["airflow"]
    assert airflow["env_file"] == ["./config/airflow/airflow.env"]
    assert airflow["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/shoplake/dags"
    assert "./dags:/opt/shoplake/dags:ro" in airflow["volumes"]
    # the file the native service reads too
    assert airflow_config.shared_env()["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert "standalone" in " ".join(airflow["command"])


def test_settings_survive_the_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What Airflow's tasks (and containers) rebuild from the environment equals the original."""
    original = Settings(
        _env_file=None,
        data_dir=tmp_path,
        pg_port=5999,  # type: ignore[call-arg]
        reject_rate_fail=0.3,
        telegram_chat_id="42",
        wandb_project="p",
        api_token="t0k",
        registry="local",
    )
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in airflow_config.settings_env(original).items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == original  # type: ignore[call-arg]
