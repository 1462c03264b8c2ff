"""The Debezium connector's config and the Kafka/Connect config templates (pure, no services)."""

from __future__ import annotations

import logging
import string
from pathlib import Path

import pytest

from jobs.adapters import debezium
from jobs.errors import UsageError
from jobs.settings import Settings
from lite.services import kafka

SECRET = "s3cr3t-Pa55"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "source_dsn": "postgresql://shop@db.example:6543/shopdb?connect_timeout=5",
        "cdc_topic_prefix": "cdc",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_config_has_the_required_keys(tmp_path: Path) -> None:
    config = debezium.connector_config(_settings(tmp_path))
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["plugin.name"] == "pgoutput"
    assert config["decimal.handling.mode"] == "string"
    assert config["snapshot.mode"] == "no_data"
    assert config["topic.prefix"] == "cdc"
    assert config["table.include.list"] == "public.orders"
    assert config["publication.autocreate.mode"] == "filtered"
    assert int(config["heartbeat.interval.ms"]) > 0
    assert int(config["poll.interval.ms"]) <= 100
    assert (config["database.hostname"], config["database.port"]) == ("db.example", "6543")
    assert (config["database.user"], config["database.dbname"]) == ("shop", "shopdb")
    assert "database.password" not in config  # the DSN has none
    # Connect keeps every config value as a string
    assert all(isinstance(v, str) for v in config.values())


def test_slot_and_publication_are_named_after_the_prefix(tmp_path: Path) -> None:
    a = _settings(tmp_path, cdc_topic_prefix="t0a1b2c3d")
    b = _settings(tmp_path, cdc_topic_prefix="Shop-Prod.eu")
    ca, cb = debezium.connector_config(a), debezium.connector_config(b)
    assert ca["slot.name"] == debezium.slot_name(a) == "shoplake_dbz_t0a1b2c3d"
    assert ca["publication.name"] == debezium.publication_name(a) == "shoplake_dbz_t0a1b2c3d_pub"
    # PostgreSQL identifiers: no dots, dashes or capitals, at most 63 characters
    assert cb["slot.name"] == "shoplake_dbz_shop_prod_eu"
    long = _settings(tmp_path, cdc_topic_prefix="x" * 80)
    assert len(debezium.slot_name(long)) == len(debezium.publication_name(long)) == 63
    assert debezium.connector_name(a) == "shoplake-orders-t0a1b2c3d"
    assert a.cdc_topic == "t0a1b2c3d.public.orders"


def test_password_is_a_file_reference_never_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, source_dsn=f"postgresql://shop:{SECRET}@db.example/shopdb")
    caplog.set_level(logging.DEBUG)
    config = debezium.connector_config(settings)
    secret_file = debezium.secrets_file(settings)
    assert config["database.password"] == f"${{file:{secret_file}:password}}"
    assert SECRET not in str(dict(config))
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert SECRET not in caplog.text
    assert "***" in repr(config)


def test_secret_file_is_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path, source_dsn=f"postgresql://shop:{SECRET}@db.example/shopdb")
    debezium._write_secret(settings)
    path = debezium.secrets_file(settings)
    assert path.read_text() == f"password={SECRET}\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_unix_socket_dsn_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, source_dsn="postgresql:///shopdb?host=/var/run/postgresql")
    with pytest.raises(UsageError, match="TCP host"):
        debezium.connector_config(settings)


def test_text_values_are_escaped_for_json(tmp_path: Path) -> None:
    settings = _settings(tmp_path, source_dsn='postgresql://sh"op@db.example/shop\\db')
    config = debezium.connector_config(settings)
    assert (config["database.user"], config["database.dbname"]) == ('sh"op', "shop\\db")


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("server.properties", {"kafka_port", "controller_port", "data_dir"}),
        ("connect-distributed.properties", {"bootstrap_servers", "connect_port", "plugin_path"}),
    ],
)
def test_worker_templates_render_loopback_natively(name: str, keys: set[str]) -> None:
    text = (kafka.CONFIG_DIR / name).read_text()
    template = string.Template(text)
    hosts = {"bind_host", "advertised_host"}  # from Settings: 127.0.0.1 unless a container
    assert set(template.get_identifiers()) == keys | hosts
    native = Settings(_env_file=None)  # type: ignore[call-arg]
    values = {k: "1" for k in keys} | {h: getattr(native, h) for h in hosts}
    rendered = template.substitute(values)
    listeners = [ln for ln in rendered.splitlines() if "listeners=" in ln]
    assert listeners and "0.0.0.0" not in rendered
    assert all("127.0.0.1" in ln for ln in listeners)


def test_connect_values_are_the_plain_envelope() -> None:
    text = (kafka.CONFIG_DIR / "connect-distributed.properties").read_text()
    props = dict(
        ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#") and "=" in ln
    )
    assert props["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert props["value.converter.schemas.enable"] == "false"
    for topic in ("config", "offset", "status"):
        assert props[f"{topic}.storage.replication.factor"] == "1"
