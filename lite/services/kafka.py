"""Apache Kafka 4.3.1 (full profile): one KRaft broker+controller on 127.0.0.1, run from Maven jars.

There is no Kafka tarball on the package registries here: the broker's jars (and Kafka
Connect's, which share the folder) come from Maven Central with their dependencies, and the
JVM is started directly with ``kafka.Kafka`` as ``bin/kafka-server-start.sh`` would.
"""

from __future__ import annotations

import logging
import os
import string
import subprocess
from pathlib import Path

import psutil

from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable
from lite.services import maven
from lite.services.base import Service
from lite.services.java import JVM_DIRS, find_java_home

log = logging.getLogger(__name__)

VERSION = "4.3.1"
# the SLF4J 1.7 binding is not in the broker's POM (the tarball adds it): without it the
# broker logs nothing. Connect's runtime shares the folder: one download for both JVMs.
LIBS = (
    f"org.apache.kafka:kafka_2.13:{VERSION}",
    f"org.apache.kafka:connect-runtime:{VERSION}",
    "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
)
CONFIG_DIR = config_path("kafka")
# Kafka, Connect and Debezium are built and tested on 17 and 21; 25 is Trino's here
JAVA_MAJORS = tuple(range(17, 25))


def libs_dir() -> Path:
    return maven.engine_dir("kafka") / "libs"


def install_libs() -> str:
    """Fetch the broker's and Connect's jars once; say where they are."""
    cached = (libs_dir() / ".complete").exists()
    jars = maven.fetch_with_dependencies("kafka", list(LIBS), libs_dir())
    how = "cached" if cached else f"fetched {', '.join(LIBS)}"
    return f"Kafka {VERSION} ({how}: {len(jars)} jars in {libs_dir()})"


def java_home() -> Path:
    """A JDK Kafka runs on (17-24, oldest first): SHOPLAKE_KAFKA_JAVA_HOME, JAVA_HOME, else any."""
    return find_java_home(
        "kafka", JAVA_MAJORS, "17 or 21 (apt-get install openjdk-17-jre-headless)", JVM_DIRS
    )


def java_command(heap: str, main: str, *args: str) -> list[str]:
    """``java`` with a fixed heap, our log4j2 config and the shared libs, running ``main``."""
    return [
        str(java_home() / "bin" / "java"),
        "-Xms128m",  # grow on demand: a laptop shares its memory with the other engines
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={CONFIG_DIR / 'log4j2.properties'}",
        "-cp",
        str(libs_dir() / "*"),
        main,
        *args,
    ]


def render(name: str, dest: Path, values: dict[str, str]) -> Path:
    """``config/kafka/<name>`` with its ``${...}`` placeholders filled, written owner-only."""
    text = string.Template((CONFIG_DIR / name).read_text()).substitute(values)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return dest


def rss_mb(pid: int | None) -> float:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20 if pid else 0.0
    except psutil.Error:
        return 0.0


class Kafka(Service):
    """One broker that is also its own KRaft controller, storing under ``<home>/data``."""

    name = "kafka"
    start_timeout = 120.0  # 3 s here (4 s with the first format); CI boxes are slower
    stop_timeout = 30.0  # a controlled shutdown flushes the logs

    @property
    def url(self) -> str:
        return self.settings.kafka_bootstrap_servers

    @property
    def external(self) -> bool:
        return not self.settings.native_kafka

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    def install(self) -> str:
        return install_libs()

    def prepare(self) -> None:
        install_libs()
        values = {
            "bind_host": self.settings.bind_host,
            "advertised_host": self.settings.advertised_host,
            "kafka_port": str(self.settings.kafka_port),
            "controller_port": str(self.settings.kafka_controller_port),
            "data_dir": str(self.data_dir),
        }
        render("server.properties", self.config_file, values)
        if not (self.data_dir / "meta.properties").exists():
            self._format()

    def _format(self) -> None:
        """Format the log dir once: a new cluster id, this node as the quorum's only voter."""
        tool = "kafka.tools.StorageTool"
        heap = "128m"
        cluster_id = self._tool(java_command(heap, tool, "random-uuid")).strip().splitlines()[-1]
        self._tool(
            java_command(
                heap,
                tool,
                "format",
                "--standalone",
                "--ignore-formatted",
                "-t",
                cluster_id,
                "-c",
                str(self.config_file),
            )
        )
        log.info("kafka: formatted %s (cluster id %s)", self.data_dir, cluster_id)

    def _tool(self, cmd: list[str]) -> str:
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=120, check=True, cwd=self.home
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            raise ServiceUnavailable(f"kafka storage tool failed: {' | '.join(detail)}") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"kafka storage tool failed: {exc}") from exc
        return done.stdout

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return java_command(heap, "kafka.Kafka", str(self.config_file))

    def env(self) -> dict[str, str]:
        return {**os.environ, "JAVA_HOME": str(java_home())}

    def healthy(self) -> bool:
        """A real Kafka round trip: a metadata request (brokers and topics) with a short timeout."""
        from jobs.adapters.kafka_io import broker_answers  # kafka-python: ~0.1 s to import

        return broker_answers(self.settings, timeout_s=2.0)

    def describe(self) -> str:
        return f"Kafka {VERSION} (KRaft), RSS {rss_mb(self.pid()):.0f} MB"
