"""The compose files' structure, checked without an engine (tests/docker runs them for real).

compose.lite.yml runs every service from the image this repository builds; compose.full.yml
is still the earlier file on official images (not run here, see the README); its config
renderer runs on the real config files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.settings import Settings
from lite import credentials, docker_images
from lite.services.airflow import config as airflow_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.lite.yml"
COMPOSE_FULL = REPO / "compose.full.yml"
SERVERS = {"postgres": "postgres", "minio": "s3", "redis": "redis", "airflow": "airflow"}
SERVICES = {*SERVERS, "secrets", "init", "dashboard", "api", "simulator", "alerts", "wandb"}
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


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_FULL], ids=lambda p: p.name)
def test_docker_compose_accepts_the_file(path: Path) -> None:
    plugin = docker_images.plugin_dir() / "docker-compose"
    if not plugin.exists() or shutil.which("docker") is None:
        pytest.skip("the Compose v2 plugin is not installed (shoplake docker install)")
    out = subprocess.run(
        [*docker_images.compose(path.name.split(".")[1]), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
        # config needs no engine
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent"},
    )
    assert out.returncode == 0, out.stderr


def test_every_lite_service_runs_the_image_this_repository_builds(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        if name == "wandb":  # optional, pulled: W&B's server cannot be built from source
            assert svc["profiles"] == ["wandb"]
            continue
        assert svc["image"] == "shoplake:lite", name
        assert svc["build"]["target"] == "lite" and svc["build"]["context"] == ".", name
        assert svc["command"][0] == "shoplake", name
    # each server is the native service, run in the foreground, healthy by the same probe
    for name, native in SERVERS.items():
        assert services[name]["command"] == ["shoplake", "services", "run", native]
        assert services[name]["healthcheck"]["test"] == [
            "CMD",
            *["shoplake", "services", "check"],
            native,
        ]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install" not in " ".join(str(s.get("command")) for s in services.values())
    assert "AS lite" in dockerfile and "config/locks/" in dockerfile


def test_every_published_port_is_on_loopback(compose: dict[str, Any]) -> None:
    published = [p for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 8
    assert all(str(p).startswith("127.0.0.1:") for p in published), published


def test_the_env_names_are_settings_and_make_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client_env = compose["x-client-env"]
    assert set(client_env) - {"<<"} <= settings_env_names() | {"SHOPLAKE_SECRETS_DIR"}
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    values = interpolated({k: v for k, v in client_env.items() if k != "<<"})
    values.update(interpolated(compose["x-env"]))
    credentials.generate(tmp_path)
    values["SHOPLAKE_SECRETS_DIR"] = str(tmp_path)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None, _secrets_dir=str(tmp_path))  # type: ignore[call-arg]
    assert s.lake_is_s3 and s.s3_endpoint_url == "http://minio:9000"
    assert s.dsn.startswith("postgresql://shoplake:") and "@postgres:5432/" in s.dsn
    assert s.redis_url.startswith("redis://:") and s.redis_url.endswith("@redis:6379/0")
    assert s.registry_backend == "local"  # until a W&B key is set in .env
    for name in ("dashboard", "api", "init", "alerts", "airflow"):
        env = compose["services"][name]["environment"]
        assert env["SHOPLAKE_S3_ENDPOINT"] == "http://minio:9000", name
    # a server runs as the native service of its container: no client endpoint for itself
    assert "SHOPLAKE_S3_ENDPOINT" not in compose["services"]["minio"]["environment"]
    assert "SHOPLAKE_REDIS_URL" not in compose["services"]["redis"]["environment"]


def test_the_lite_file_holds_no_secret(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "shoplake-dev-only" not in text and "change-me" not in text
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET_KEY|TOKEN|API_KEY", key):
                assert str(value).startswith("${") and str(value).endswith(":-}"), (name, key)
    # the passwords come from the one-shot that generates them, read-only everywhere else
    for name, svc in compose["services"].items():
        if name not in ("secrets", "wandb"):
            assert "shoplake-secrets:/run/shoplake-secrets:ro" in svc["volumes"], name
            assert svc["depends_on"], name


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


# ---------------------------------------------------------------- compose.full.yml
FULL_SERVERS = {
    "kafka": "kafka",
    "connect": "connect",
    "flink-jobmanager": "flink-jobmanager",
    "flink-taskmanager": "flink-taskmanager",
    "trino": "trino",
}
FULL_ONE_SHOTS = {
    "connect-register": "shoplake cdc register",
    "flink-submit": "shoplake flink submit",
}


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FULL.read_text())


def test_full_is_the_lite_file_on_the_full_image_plus_the_streaming_side(
    compose: dict[str, Any], full: dict[str, Any]
) -> None:
    services = full["services"]
    assert set(services) == SERVICES | set(FULL_SERVERS) | set(FULL_ONE_SHOTS)
    for name, svc in services.items():
        if name != "wandb":
            assert svc["image"] == "shoplake:full" and svc["build"]["target"] == "full", name
    for name, native in FULL_SERVERS.items():
        assert services[name]["command"] == ["shoplake", "services", "run", native]
        assert services[name]["healthcheck"]["test"][-1] == native
    for name, command in FULL_ONE_SHOTS.items():
        assert " ".join(services[name]["command"]) == command and services[name]["restart"] == "no"
    # the lite services unchanged but for the image, the profile and the alerts' engine
    for name in SERVICES - {"wandb", "alerts", "init"}:
        lite_svc, full_svc = dict(compose["services"][name]), dict(services[name])
        for svc in (lite_svc, full_svc):
            svc.pop("image"), svc.pop("build"), svc.pop("environment", None)
        assert full_svc == lite_svc, name
    assert services["alerts"]["command"][:5] == ["shoplake", "alerts", "run", "--engine", "flink"]
    assert full["x-env"]["SHOPLAKE_PROFILE"] == "full"
    lite_env = {k: v for k, v in compose["x-env"].items() if k != "SHOPLAKE_PROFILE"}
    assert lite_env.items() <= full["x-env"].items()


def test_full_publishes_every_port_on_loopback(full: dict[str, Any]) -> None:
    published = [str(p) for svc in full["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 11
    assert all(p.startswith("127.0.0.1:") for p in published), published


def test_full_env_is_settings_with_the_engines_in_the_network(
    full: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = {k: v for k, v in full["x-client-env"].items() if k != "<<"}
    assert set(client) | set(full["x-env"]) <= settings_env_names() | {"SHOPLAKE_SECRETS_DIR"}
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    credentials.generate(tmp_path)
    for name, value in {**interpolated(full["x-env"]), **interpolated(client)}.items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None, _secrets_dir=str(tmp_path))  # type: ignore[call-arg]
    assert s.profile == "full" and not s.native_kafka
    assert s.kafka_bootstrap_servers == "kafka:9092"
    assert (s.flink_host, s.connect_host, s.trino_host) == ("flink-jobmanager", "connect", "trino")
    assert (s.cdc_topic, s.alerts_topic) == ("cdc.public.orders", "flink-alerts")
    services = full["services"]
    # a server is the native service of its container, named as the others reach it
    assert services["kafka"]["environment"]["SHOPLAKE_ADVERTISED_HOST"] == "kafka"
    assert "SHOPLAKE_KAFKA_BOOTSTRAP" not in services["kafka"]["environment"]
    assert services["flink-taskmanager"]["environment"]["SHOPLAKE_ADVERTISED_HOST"] == (
        "flink-taskmanager"
    )


def test_full_holds_no_secret(full: dict[str, Any]) -> None:
    text = COMPOSE_FULL.read_text()
    assert "shoplake-dev-only" not in text and "change-me" not in text
    for name, svc in full["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET_KEY|TOKEN|API_KEY", key):
                assert str(value).startswith("${") and str(value).endswith(":-}"), (name, key)


def test_the_native_config_templates_bind_and_advertise_from_settings() -> None:
    """What lets one config file serve natively (127.0.0.1) and in a container network."""
    kafka = (REPO / "config/kafka/server.properties").read_text()
    assert "listeners=PLAINTEXT://${bind_host}:" in kafka
    assert "advertised.listeners=PLAINTEXT://${advertised_host}:" in kafka
    flink = yaml.safe_load((REPO / "config/flink/config.yaml").read_text())
    assert flink["jobmanager.rpc.address"] == "${flink_host}"
    assert flink["taskmanager.host"] == "${advertised_host}"
    assert "127.0.0.1" not in "".join(
        (REPO / f).read_text()
        for f in ("config/kafka/server.properties", "config/kafka/connect-distributed.properties")
    )


def test_full_starts_in_order_on_health(full: dict[str, Any]) -> None:
    services = full["services"]
    one_shots = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shots == {"secrets", "init", *FULL_ONE_SHOTS}
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} -> {dep}"
            condition = cond["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
            if condition == "service_completed_successfully":
                assert dep in one_shots, f"{name} waits for {dep} to finish"

    def waits(name: str, dep: str, condition: str) -> None:
        assert services[name]["depends_on"][dep]["condition"] == condition, (name, dep)

    waits("connect", "kafka", "service_healthy")
    waits("connect-register", "connect", "service_healthy")
    waits("flink-submit", "flink-taskmanager", "service_healthy")
    waits("flink-submit", "connect-register", "service_completed_successfully")
    waits("alerts", "flink-submit", "service_completed_successfully")
    waits("init", "trino", "service_healthy")
    # the connector's password file is written where Connect reads it
    assert "connect-data:/data" in services["connect-register"]["volumes"]
    assert "connect-data:/data" in services["connect"]["volumes"]
    assert "flink-data:/data" in services["flink-taskmanager"]["volumes"]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_FULL], ids=lambda p: p.name)
def test_the_simulator_runs_the_shop_model_at_the_demos_speed(path: Path) -> None:
    """As ``make demo`` (``up --simulate 1x``): the seeded shop's rhythm and volume, not a
    flat rate of orders per second."""
    from jobs.simulator import MAX_SPEED
    from lite.cli.live import simulate_option

    command = yaml.safe_load(path.read_text())["services"]["simulator"]["command"]
    assert command[:3] == ["shoplake", "simulate", "--speed"] and "--rate" not in command
    (speed,) = interpolated({"speed": command[3]}).values()
    demo = re.search(r"--simulate (\S+)", (REPO / "Makefile").read_text())
    assert demo is not None
    assert simulate_option(demo[1]) == (None, float(speed))
    assert 0 < float(speed) <= MAX_SPEED
