"""Kafka Connect 4.3.1 with the Debezium PostgreSQL connector (full profile), on 127.0.0.1.

One distributed-mode worker (its state lives in Kafka topics, so a restart keeps the
registered connector and its offsets), run from the same jars as the broker. Debezium
comes as its ``plugin`` archive from Maven Central, unpacked under ``plugin.path``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from jobs.adapters.debezium import connect_api, connect_url
from jobs.adapters.rest import RestError
from jobs.errors import ServiceUnavailable
from lite.services import engines, maven
from lite.services.base import Service
from lite.services.kafka import VERSION, install_libs, java_command, java_home, render, rss_mb

log = logging.getLogger(__name__)

DEBEZIUM_VERSION = "3.6.1.Final"
DEBEZIUM = f"io.debezium:debezium-connector-postgres:{DEBEZIUM_VERSION}"
PLUGIN_ARCHIVE = f"{DEBEZIUM}:tar.gz:plugin"
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"


def plugins_dir() -> Path:
    """Connect's ``plugin.path``: one sub-folder per plugin."""
    return maven.engine_dir("kafka") / "plugins"


def plugin_home() -> Path:
    return plugins_dir() / "debezium-connector-postgres"


def install_plugin() -> str:
    """Unpack the Debezium PostgreSQL plugin once; say where it came from."""
    home = plugin_home()
    stamp = home / ".complete"
    if stamp.exists() and stamp.read_text().strip() == DEBEZIUM_VERSION:
        return f"Debezium {DEBEZIUM_VERSION} (cached: {home})"
    scratch = home.with_name(home.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        archive = maven.fetch(PLUGIN_ARCHIVE, maven.engine_dir("kafka") / "downloads")
    except ServiceUnavailable as exc:
        # not every mirror serves the classifier: the connector's runtime dependencies are
        # the same jars. Both bring copies of connect-api and kafka-clients; harmless, as
        # Connect loads org.apache.kafka classes from its own class path first
        log.warning("no Debezium plugin archive (%s); copying its dependencies instead", exc)
        maven.fetch_with_dependencies("debezium", [DEBEZIUM], scratch / "lib")
        source = f"fetched {DEBEZIUM} with its runtime dependencies"
    else:
        engines.unpack(archive, scratch, "data")
        archive.unlink()  # Maven's local repository keeps a copy for a re-install
        scratch = _single_child(scratch)
        source = f"fetched {PLUGIN_ARCHIVE}"
    shutil.rmtree(home, ignore_errors=True)
    scratch.replace(home)
    shutil.rmtree(home.with_name(home.name + ".partial"), ignore_errors=True)
    (home / ".complete").write_text(DEBEZIUM_VERSION + "\n")
    return f"Debezium {DEBEZIUM_VERSION} ({source}: {home})"


def _single_child(folder: Path) -> Path:
    """The archive's top folder (``debezium-connector-postgres/``) when it has exactly one."""
    children = list(folder.iterdir())
    return children[0] if len(children) == 1 and children[0].is_dir() else folder


class KafkaConnect(Service):
    """One distributed Connect worker; ``jobs.adapters.debezium`` registers the connector."""

    name = "connect"
    start_timeout = 180.0  # 3 s here (12 s the first time); a loaded CI box is slower
    stop_timeout = 30.0

    @property
    def url(self) -> str:
        return connect_url(self.settings)

    @property
    def config_file(self) -> Path:
        return self.home / "connect-distributed.properties"

    def ports(self) -> list[int]:
        return [self.settings.connect_port]

    def install(self) -> str:
        return f"{install_libs()}; {install_plugin()}"

    def prepare(self) -> None:
        install_libs()
        install_plugin()
        from jobs.adapters.kafka_io import broker_answers  # kafka-python: only when starting

        if not broker_answers(self.settings, timeout_s=5.0):
            # the worker would otherwise retry silently until start_timeout
            raise ServiceUnavailable(
                f"connect: Kafka at {self.settings.kafka_bootstrap_servers} does not answer "
                "(start it first: shoplake services start kafka)"
            )
        values = {
            "bootstrap_servers": self.settings.kafka_bootstrap_servers,
            "bind_host": self.settings.bind_host,
            "advertised_host": self.settings.advertised_host,
            "connect_port": str(self.settings.connect_port),
            "plugin_path": str(plugins_dir()),
        }
        render("connect-distributed.properties", self.config_file, values)

    def command(self) -> list[str]:
        return java_command(
            self.settings.connect_heap,
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.config_file),
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "JAVA_HOME": str(java_home())}

    def healthy(self) -> bool:
        """The REST API answers and lists Debezium's PostgreSQL connector among its plugins."""
        try:
            api = connect_api(self.settings, timeout=2)
            info, plugins = api.get("/"), api.get("/connector-plugins")
        except (ServiceUnavailable, RestError):
            return False
        return (
            isinstance(info, dict)
            and isinstance(plugins, list)
            and any(p.get("class") == POSTGRES_CONNECTOR for p in plugins)
        )

    def describe(self) -> str:
        rss = rss_mb(self.pid())
        return f"Kafka Connect {VERSION} + Debezium {DEBEZIUM_VERSION}, RSS {rss:.0f} MB"
