"""The native service manager behind ``shoplake services``: which services, in which order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jobs.errors import UsageError
from jobs.settings import Settings
from lite.services.airflow.service import AirflowService
from lite.services.base import Service, ServiceStatus
from lite.services.flink.service import JobManager, TaskManager
from lite.services.kafka import Kafka
from lite.services.kafka_connect import KafkaConnect
from lite.services.postgres import Postgres
from lite.services.redis import RedisService
from lite.services.s3_servers import s3_service
from lite.services.trino import Trino

__all__ = ["ServiceStatus", "install", "start", "status", "stop"]


@dataclass(frozen=True)
class Entry:
    """A registered service: how to build it and whether only the full profile runs it."""

    factory: Callable[[Settings, bool], Service]
    full_only: bool = False


# start order; stop goes in reverse. Later services register here in one line.
REGISTRY: dict[str, Entry] = {
    "postgres": Entry(lambda s, starting: Postgres(s)),
    "s3": Entry(lambda s, starting: s3_service(s, starting)),
    "redis": Entry(lambda s, starting: RedisService(s)),
    "trino": Entry(lambda s, starting: Trino(s), full_only=True),
    "kafka": Entry(lambda s, starting: Kafka(s), full_only=True),
    "connect": Entry(lambda s, starting: KafkaConnect(s), full_only=True),
    "flink-jobmanager": Entry(lambda s, starting: JobManager(s), full_only=True),
    "flink-taskmanager": Entry(lambda s, starting: TaskManager(s), full_only=True),
    "airflow": Entry(lambda s, starting: AirflowService(s)),
}


def _selected(settings: Settings, names: list[str] | None, full: bool) -> list[str]:
    if names:
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise UsageError(
                f"unknown service(s) {', '.join(unknown)} (choose from {', '.join(REGISTRY)})"
            )
        return [n for n in REGISTRY if n in names]
    full = full or settings.profile == "full"
    return [n for n, e in REGISTRY.items() if full or not e.full_only]


def services(
    settings: Settings, names: list[str] | None = None, full: bool = False, starting: bool = False
) -> list[Service]:
    """The service objects for ``names`` (default: every service of the profile)."""
    return [REGISTRY[n].factory(settings, starting) for n in _selected(settings, names, full)]


def install(settings: Settings, full: bool = False) -> list[str]:
    """Fetch or build every engine once; one line per engine saying what and from where."""
    lines = []
    for svc in services(settings, None, full, starting=True):
        if svc.external:
            lines.append(f"{svc.name}: external server at {svc.url}, nothing to install")
        else:
            lines.append(f"{svc.name}: {svc.install()}")
    return lines


def start(settings: Settings, names: list[str] | None, full: bool = False) -> list[ServiceStatus]:
    """Start the services (idempotent) and wait until each is healthy."""
    from lite import credentials

    credentials.ensure_installation(settings)  # first start: passwords for PostgreSQL, Redis
    return [svc.start() for svc in services(settings, names, full, starting=True)]


def run_foreground(settings: Settings, name: str) -> int:
    """Run the service ``name`` in the foreground until it is stopped; its exit code."""
    from lite import credentials

    credentials.ensure_installation(settings)
    (svc,) = services(settings, [name], full=True, starting=True)
    return svc.run_foreground()


def answers(settings: Settings, name: str) -> bool:
    """One health probe of the service ``name``."""
    (svc,) = services(settings, [name], full=True)
    return svc.answers()


def stop(settings: Settings, names: list[str] | None) -> list[ServiceStatus]:
    """Stop the services by their PIDs, in reverse start order."""
    return [svc.stop() for svc in reversed(services(settings, names, full=True))]


def status(settings: Settings, names: list[str] | None) -> list[ServiceStatus]:
    """Where each service runs, its PID, and whether it answers."""
    return [svc.status() for svc in services(settings, names)]
