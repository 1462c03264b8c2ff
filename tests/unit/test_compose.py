"""The compose files' structure, checked without an engine (tests/docker runs them for real).

compose.lite.yml runs every service from the image this repository builds; compose.full.yml
is still the earlier file on official images (not run here, see the README); its config
renderer runs on the real config files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.settings import Settings
from lite import airflow_config, credentials, docker_images

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
FULL_ONLY = {
    "config-render": "python:3.11",
    "trino": "trinodb/trino:476",
    "kafka": "apache/kafka:4.3.1",
    "connect": "quay.io/debezium/connect:3.6.1.Final",
    "connect-register": "python:3.11",
    "flink-jobmanager": "flink:2.2.1-java17",
    "flink-taskmanager": "flink:2.2.1-java17",
    "flink-submit": "python:3.11-bookworm",
    "alerts": "python:3.11",
}
# ${...} names the compose files read that are not Settings fields (container-only knobs)
COMPOSE_ONLY_VARS = {"SHOPLAKE_PG_PASSWORD", "SHOPLAKE_KAFKA_CLUSTER_ID"}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|SECRET_KEY", re.IGNORECASE)
TEMPLATE = re.compile(r"\$\{(\w+)\}")


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FULL.read_text())


def properties(path: Path) -> dict[str, str]:
    pairs = (ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def test_full_says_it_is_not_run_in_ci() -> None:
    header = COMPOSE_FULL.read_text().split("\n\n", 3)[:3]
    assert "NOT EXERCISED IN CI" in "\n".join(header)


def test_full_publishes_every_port_on_loopback_at_the_native_ports(full: dict[str, Any]) -> None:
    published = [str(p) for svc in full["services"].values() for p in svc.get("ports", [])]
    assert len(published) == 12
    assert all(p.startswith("127.0.0.1:") for p in published), published
    host = {
        name: [int(str(p).split(":")[1]) for p in svc.get("ports", [])]
        for name, svc in full["services"].items()
    }
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert host["trino"] == [s.trino_port]
    assert host["kafka"] == [s.kafka_port]
    assert host["connect"] == [s.connect_port]
    assert host["flink-jobmanager"] == [s.flink_port]


def test_full_env_is_settings_with_kafka_in_the_network(
    full: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = full["x-shoplake-env"]
    assert set(env) <= settings_env_names()
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in interpolated(env).items():
        monkeypatch.setenv(name, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.profile == "full" and not s.native_kafka
    assert s.kafka_bootstrap_servers == "kafka:9092"
    assert (s.cdc_topic, s.alerts_topic) == ("cdc.public.orders", "flink-alerts")
    assert "@postgres:5432/" in s.dsn and s.s3_endpoint_url == "http://minio:9000"
    services = full["services"]
    for name in ("dashboard", "api", "flink-submit", "alerts"):
        assert services[name]["environment"] == env, name
    assert services["connect-register"]["environment"] == {**env, "HOME": "/tmp"}
    assert services["alerts"]["command"][-1].endswith("shoplake alerts run --engine flink")
    assert services["flink-submit"]["command"][-1].endswith("shoplake flink submit")
    assert "debezium.register(settings)" in services["connect-register"]["command"][-1]


def test_full_holds_no_secret_literals(full: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{(SHOPLAKE_\w+|WANDB_\w+)", COMPOSE_FULL.read_text()))
    assert used - settings_env_names() <= COMPOSE_ONLY_VARS
    for name, svc in full["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else []:
            if SECRETISH.search(key):
                assert str(value).startswith("${"), f"{name}: {key} is a literal"
    text = COMPOSE_FULL.read_text()
    assert "shoplake-dev-only" not in text  # the native-only development secret


def test_full_mounts_the_native_config_files(full: dict[str, Any]) -> None:
    services = full["services"]
    kafka = services["kafka"]
    assert (
        "./config/kafka/server.properties:/mnt/shared/config/server.properties:ro"
        in (kafka["volumes"])
    )
    # every templated key of the native broker's file is overridden for the container
    templated = {
        k for k, v in properties(REPO / "config/kafka/server.properties").items() if "${" in v
    }
    assert templated == {
        "listeners",
        "advertised.listeners",
        "controller.quorum.bootstrap.servers",
        "log.dirs",
    }
    for key in templated:
        assert f"KAFKA_{key.replace('.', '_').upper()}" in kafka["environment"], key
    assert "kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]

    connect = services["connect"]
    worker = properties(REPO / "config/kafka/connect-distributed.properties")
    assert (
        "./config/kafka/connect-distributed.properties:"
        "/kafka/config.orig/connect-distributed.properties:ro"
    ) in connect["volumes"]
    # templated keys: the image sets these from its variables (plugin.path and the advertised
    # port from its own defaults, /kafka/connect and 8083)
    assert {k for k, v in worker.items() if "${" in v} == {
        "bootstrap.servers",
        "listeners",
        "rest.advertised.port",
        "plugin.path",
    }
    cenv = connect["environment"]
    assert cenv["BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert cenv["CONNECT_LISTENERS"] == "http://0.0.0.0:8083"
    # the image's defaults would replace the file's values for these: keep the file's
    assert cenv["GROUP_ID"] == worker["group.id"]
    assert cenv["OFFSET_FLUSH_INTERVAL_MS"] == worker["offset.flush.interval.ms"]
    for topic in ("config", "offset", "status"):
        assert cenv[f"{topic.upper()}_STORAGE_TOPIC"] == worker[f"{topic}.storage.topic"]

    render = services["config-render"]
    assert "./config/trino:/opt/shoplake/config/trino:ro" in render["volumes"]
    assert "./config/flink:/opt/shoplake/config/flink:ro" in render["volumes"]
    assert "trino-etc:/etc/trino" in services["trino"]["volumes"]
    for name in ("flink-jobmanager", "flink-taskmanager"):
        assert "flink-conf:/opt/shoplake/flink-conf:ro" in services[name]["volumes"]


def test_full_renders_the_trino_and_flink_templates(full: dict[str, Any], tmp_path: Path) -> None:
    """The config-render script on the real config folders: every placeholder has a value."""
    svc = full["services"]["config-render"]
    env = interpolated(svc["environment"])
    placeholders = {
        name
        for folder in ("trino", "flink")
        for f in (REPO / "config" / folder).rglob("*")
        if f.is_file() and f.name != "log4j-console.properties"
        for name in TEMPLATE.findall(f.read_text())
    }
    assert placeholders - {"query_memory"} <= set(env), placeholders - set(env)
    env.update(
        RENDER_FROM=str(REPO / "config"),
        RENDER_TO=str(tmp_path / "render"),
        data_dir=str(tmp_path / "trino-data"),
        metastore_dir=str(tmp_path / "trino-data/metastore"),
        checkpoint_dir=str(tmp_path / "flink-data/checkpoints"),
        savepoint_dir=str(tmp_path / "flink-data/savepoints"),
    )
    script = svc["command"][-1]
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    trino = properties(tmp_path / "render/trino/config.properties")
    assert trino["http-server.http.port"] == "8080"
    assert trino["query.max-memory"] == "1024MB"  # 40 % of 2560M, as natively
    catalog = properties(tmp_path / "render/trino/catalog/postgres_source.properties")
    assert catalog["connection-url"] == "jdbc:postgresql://postgres:5432/shoplake"
    flink = yaml.safe_load((tmp_path / "render/flink/config.yaml").read_text())
    assert (flink["rest.port"], flink["jobmanager.rpc.port"]) == (8081, 6123)
    assert flink["execution.checkpointing.dir"].startswith("file://")
    log4j = (tmp_path / "render/flink/log4j-console.properties").read_text()
    assert log4j == (REPO / "config/flink/log4j-console.properties").read_text()
    for f in (tmp_path / "render").rglob("*"):
        if f.is_file() and f.name != "log4j-console.properties":
            settings_lines = [ln for ln in f.read_text().splitlines() if not ln.startswith("#")]
            assert not [ln for ln in settings_lines if "${" in ln], f
    for path in ("trino-data/tmp", "flink-data/checkpoints"):
        assert (tmp_path / path).is_dir()


def test_full_starts_in_order_on_health(full: dict[str, Any]) -> None:
    services = full["services"]
    one_shots = {n for n, s in services.items() if s.get("restart") == "no"}
    assert {"config-render", "connect-register", "flink-submit"} <= one_shots
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} -> {dep}"
            condition = cond["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
            if condition == "service_completed_successfully":
                assert dep in one_shots, f"{name} waits for {dep} to finish"
    for name in ("kafka", "connect", "trino", "flink-jobmanager"):
        assert services[name]["healthcheck"]["test"], name

    def waits(name: str, dep: str, condition: str) -> None:
        assert services[name]["depends_on"][dep]["condition"] == condition, (name, dep)

    waits("connect", "kafka", "service_healthy")
    waits("connect-register", "connect", "service_healthy")
    waits("flink-submit", "flink-jobmanager", "service_healthy")
    waits("flink-submit", "connect-register", "service_completed_successfully")
    waits("alerts", "flink-submit", "service_completed_successfully")
    waits("alerts", "kafka", "service_healthy")
    waits("trino", "config-render", "service_completed_successfully")
    waits("flink-jobmanager", "config-render", "service_completed_successfully")
    # the one-shots that talk to 127.0.0.1 (as natively) share the engine's network namespace
    assert services["connect-register"]["network_mode"] == "service:connect"
    assert services["flink-submit"]["network_mode"] == "service:flink-jobmanager"
