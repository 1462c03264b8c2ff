"""Flink 2.2.1 standalone cluster (full profile): a JobManager and a TaskManager on 127.0.0.1.

Both run from the Flink distribution inside the PyFlink wheel (``lite.services.flink.venv``), each
as a foreground JVM (``bin/<role>.sh start-foreground`` execs java), so our pid file holds
the real process. The Kafka SQL connector is not on the cluster's class path: the job
ships it (``pipeline.jars``), so the distribution stays as pip installed it.
"""

from __future__ import annotations

import os
import shutil
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from jobs.adapters.rest import Rest, RestError
from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable
from lite.services import maven
from lite.services.base import Service
from lite.services.flink import venv as flink_venv
from lite.services.java import JVM_DIRS, find_java_home

if TYPE_CHECKING:
    from jobs.alerts.flink_job import FlinkRuntime
    from jobs.settings import Settings

VERSION = flink_venv.FLINK_VERSION
KAFKA_CONNECTOR = maven.Artifact("org.apache.flink", "flink-sql-connector-kafka", "5.0.0-2.2")
CONFIG_DIR = config_path("flink")
TASK_SLOTS = 4
JAVA_MAJORS = (17, 21, 11)  # the JDKs Flink 2.2 supports, preferred first


def connector_jar() -> Path:
    """The Kafka SQL connector (shaded) the job loads with ``pipeline.jars``."""
    return maven.engine_dir("flink") / KAFKA_CONNECTOR.filename


def install() -> str:
    """The PyFlink venv (the distribution) and the Kafka connector, once each."""
    venv = flink_venv.ensure()
    maven.fetch(KAFKA_CONNECTOR.coordinate, maven.engine_dir("flink"))
    return f"{venv}; {KAFKA_CONNECTOR.coordinate} in {maven.engine_dir('flink')}"


def java_home() -> Path:
    """A JDK Flink supports: SHOPLAKE_FLINK_JAVA_HOME, JAVA_HOME, else 17 (then 21, 11)."""
    return find_java_home("flink", JAVA_MAJORS, "17 (or 11/21)", JVM_DIRS)


def runtime(settings: Settings) -> FlinkRuntime:
    """What ``jobs.flink_alerts`` needs to submit and cancel the job on this host (the PyFlink
    venv and the Kafka connector are installed first when missing)."""
    from jobs.alerts.flink_job import FlinkRuntime

    if not (flink_venv.installed() and connector_jar().exists()):
        install()
    return FlinkRuntime(
        python=flink_venv.python(),
        connector_jar=connector_jar(),
        java_home=java_home(),
        checkpoint_dir=JobManager(settings).checkpoint_dir,
    )


def rest_url(settings: Any) -> str:
    return f"http://{settings.flink_host}:{settings.flink_port}"


def rest(settings: Any) -> Rest:
    """The JobManager's REST API, with a short timeout: the service probes it while polling."""
    return Rest("Flink JobManager", rest_url(settings), timeout=2.0)


# what a probe of a JobManager that is not up (yet) gets: nothing answers, or an error status
NOT_ANSWERING = (ServiceUnavailable, RestError)


def taskmanager_id(settings: Any) -> str:
    return f"shoplake-taskmanager-{settings.flink_port}"


def _rss_line(pid: int | None) -> str:
    rss = psutil.Process(pid).memory_info().rss / 2**20 if pid else 0.0
    return f"RSS {rss:.0f} MB"


class _FlinkProcess(Service):
    """What the JobManager and the TaskManager share: config, class path, Java, command."""

    engine_pid_files = ("run/flink-*.pid",)

    role: ClassVar[str]
    start_timeout = 120.0  # 5-15 s here; a loaded 2-core CI box is slower
    stop_timeout = 30.0

    @property
    def url(self) -> str:
        return rest_url(self.settings)

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def jobmanager_home(self) -> Path:
        """Checkpoints live here, for both processes (the TaskManager writes state files)."""
        return self.settings.data_path / "services" / "flink-jobmanager"

    @property
    def checkpoint_dir(self) -> Path:
        """Each job's checkpoints, in a folder named by its job id."""
        return self.jobmanager_home / "checkpoints"

    @property
    def savepoint_dir(self) -> Path:
        return self.jobmanager_home / "savepoints"

    def install(self) -> str:
        return install()

    def prepare(self) -> None:
        if not (flink_venv.installed() and connector_jar().exists()):
            install()
        java_home()  # fail before launching, with the one-line reason
        shutil.rmtree(self.conf_dir, ignore_errors=True)
        self.conf_dir.mkdir(parents=True)
        for folder in (
            self.home / "log",
            self.home / "tmp",
            self.checkpoint_dir,
            self.savepoint_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        template = string.Template((CONFIG_DIR / "config.yaml").read_text())
        (self.conf_dir / "config.yaml").write_text(template.substitute(self._values()))
        # Log4j's own ${sys:...} lookups: copied, not templated
        shutil.copy(CONFIG_DIR / "log4j-console.properties", self.conf_dir)

    def _values(self) -> dict[str, str]:
        s = self.settings
        return {
            "bind_host": s.bind_host,
            "advertised_host": s.advertised_host,
            "flink_host": s.flink_host,
            "rpc_port": str(s.flink_rpc_port),
            "rest_port": str(s.flink_port),
            "jobmanager_memory": s.flink_jobmanager_memory,
            "taskmanager_memory": s.flink_taskmanager_memory,
            "taskmanager_id": taskmanager_id(s),
            "task_slots": str(TASK_SLOTS),
            "checkpoint_dir": str(self.checkpoint_dir),
            "savepoint_dir": str(self.savepoint_dir),
            "tmp_dir": str(self.home / "tmp"),
            "home": str(self.home),
        }

    def command(self) -> list[str]:
        script = flink_venv.flink_home() / "bin" / f"{self.role}.sh"
        return ["bash", str(script), "start-foreground"]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "JAVA_HOME": str(java_home()),
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LOG_DIR": str(self.home / "log"),
            # Flink's scripts write a pid file of their own: keep it apart from ours
            "FLINK_PID_DIR": str(self.home / "run"),
        }


class JobManager(_FlinkProcess):
    """The JobManager: scheduling, checkpoints, the REST API and web UI on ``flink_port``."""

    name = "flink-jobmanager"
    role = "jobmanager"

    def ports(self) -> list[int]:
        return [self.settings.flink_port, self.settings.flink_rpc_port]

    def healthy(self) -> bool:
        try:
            overview = rest(self.settings).get("/overview")
        except NOT_ANSWERING:
            return False
        return isinstance(overview, dict) and "flink-version" in overview

    def describe(self) -> str:
        try:
            overview = rest(self.settings).get("/overview")
        except NOT_ANSWERING:
            return f"Flink {VERSION}, {_rss_line(self.pid())}"
        running = overview.get("jobs-running", 0) if isinstance(overview, dict) else 0
        return f"Flink {VERSION}, {running} job(s) running, {_rss_line(self.pid())}"


class TaskManager(_FlinkProcess):
    """One TaskManager with ``TASK_SLOTS`` slots, registered with our JobManager."""

    name = "flink-taskmanager"
    role = "taskmanager"

    def prepare(self) -> None:
        if not JobManager(self.settings).healthy():
            raise ServiceUnavailable(
                f"{self.name} needs the JobManager at {self.url}: start flink-jobmanager first"
            )
        super().prepare()

    def healthy(self) -> bool:
        try:
            listing = rest(self.settings).get("/taskmanagers")
        except NOT_ANSWERING:
            return False
        found = listing.get("taskmanagers", []) if isinstance(listing, dict) else []
        ids = {tm.get("id") for tm in found}
        return taskmanager_id(self.settings) in ids

    def describe(self) -> str:
        return f"{TASK_SLOTS} slots, {_rss_line(self.pid())}"
