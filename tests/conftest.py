"""Shared fixtures: ``Settings`` that point at real PostgreSQL and S3 servers.

By default the native services are started through ``lite.services.manager`` in a
test data dir on test ports (reused when already running; only what this session
started is stopped at its end). With ``SHOPLAKE_TEST_DOCKER=1`` and a Docker engine,
testcontainers runs them instead (that path cannot be exercised on the machines
without Docker where this project is developed and tested).

Environment: SHOPLAKE_TEST_DATA_DIR (default /tmp/shoplake-test-<uid>),
SHOPLAKE_TEST_PG_PORT (25434), SHOPLAKE_TEST_S3_PORT (29000; console = +1),
SHOPLAKE_TEST_POOL_REDIS_PORT (26379),
SHOPLAKE_TEST_KEEP_SERVICES=1 (leave started services running for the next run).
The test ports sit below Linux's ephemeral range (32768-60999): a port in it can be the
local end of any outgoing connection at the moment a server binds it (seen in CI).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from jobs.settings import LAKE_BUCKETS, Settings

TEST_DATA_DIR = Path(
    os.environ.get("SHOPLAKE_TEST_DATA_DIR") or f"/tmp/shoplake-test-{os.getuid()}"
)
TEST_PG_PORT = int(os.environ.get("SHOPLAKE_TEST_PG_PORT") or 25434)
TEST_S3_PORT = int(os.environ.get("SHOPLAKE_TEST_S3_PORT") or 29000)
TEST_POOL_REDIS_PORT = int(os.environ.get("SHOPLAKE_TEST_POOL_REDIS_PORT") or 26379)
USE_DOCKER = os.environ.get("SHOPLAKE_TEST_DOCKER") == "1"
KEEP_SERVICES = os.environ.get("SHOPLAKE_TEST_KEEP_SERVICES") == "1"


def settings_for_tests(**overrides: object) -> Settings:
    """Settings for the native test services (no ``.env``), with ``overrides`` on top."""
    values: dict[str, object] = {
        "data_dir": TEST_DATA_DIR,
        "pg_port": TEST_PG_PORT,
        "s3_port": TEST_S3_PORT,
        "s3_console_port": TEST_S3_PORT + 1,
        "lake_uri": "s3://",
        "source_dsn": None,
        "s3_endpoint": None,
        "redis_url": f"redis://127.0.0.1:{TEST_POOL_REDIS_PORT}/0",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


class ServicePool:
    """Native services started on demand for the session; stops only what it started.

    Several pytest sessions may share the services (developers working side by side):
    each registers a lease, and the last one to leave stops what any of them started.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.leases = settings.data_path / "test-sessions"
        self.mine = self.leases / str(os.getpid())
        self.owned = self.leases / "started-by-tests"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.leases.mkdir(parents=True, exist_ok=True)
        with (self.leases / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _started(self) -> set[str]:
        return set(self.owned.read_text().split()) if self.owned.exists() else set()

    def ensure(self, *names: str) -> Settings:
        from lite.services import manager

        with self._locked():
            self.mine.touch()
            running = {st.name for st in manager.status(self.settings, list(names)) if st.running}
            manager.start(self.settings, list(names))
            started = self._started() | {n for n in names if n not in running}
            self.owned.write_text("\n".join(sorted(started)) + "\n")
        return self.settings

    def close(self) -> None:
        from lite.services import manager, proc

        with self._locked():
            self.mine.unlink(missing_ok=True)
            for lease in self.leases.iterdir():
                if lease.name.isdigit() and not proc.is_ours(int(lease.name), "pytest"):
                    lease.unlink(missing_ok=True)  # a session that crashed
            if KEEP_SERVICES or any(p.name.isdigit() for p in self.leases.iterdir()):
                return
            started = self._started()
            if started:
                manager.stop(self.settings, sorted(started))
            self.owned.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def service_pool() -> Iterator[ServicePool]:
    """Start further native services with ``service_pool.ensure("redis")`` (later issues)."""
    pool = ServicePool(settings_for_tests())
    yield pool
    pool.close()


def _docker_settings(stack: ExitStack) -> Settings:
    """PostgreSQL and MinIO in containers. Not exercised here: no Docker engine on our machines."""
    from testcontainers.community.minio import MinioContainer
    from testcontainers.community.postgres import PostgresContainer

    from lite.services.s3 import ensure_buckets

    pg = PostgresContainer(
        "postgres:18", username="shoplake", password="shoplake", dbname="shoplake", driver=None
    )
    pg.with_command(
        "postgres -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10"
    )
    stack.enter_context(pg)
    minio = stack.enter_context(MinioContainer())
    cfg = minio.get_config()
    settings = settings_for_tests(
        source_dsn=pg.get_connection_url(driver=None),
        s3_endpoint=f"http://{cfg['endpoint']}",
        s3_access_key=cfg["access_key"],
        s3_secret_key=cfg["secret_key"],
    )
    ensure_buckets(settings)
    return settings


@pytest.fixture(scope="session")
def services_settings(service_pool: ServicePool) -> Iterator[Settings]:
    """Settings on the real PostgreSQL (database ``shoplake``) and S3 (``s3://`` lake)."""
    if USE_DOCKER:
        with ExitStack() as stack:
            yield _docker_settings(stack)
        return
    yield service_pool.ensure("postgres", "s3")


def _with_dbname(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def redis_pool_settings(service_pool: ServicePool) -> Settings:
    """Settings whose ``redis_url`` is the pool's native Redis (started on demand)."""
    return service_pool.ensure("redis")


@pytest.fixture
def pg_settings(services_settings: Settings) -> Iterator[Settings]:
    """Settings whose ``source_dsn`` is a fresh, empty database made for this test only."""
    admin = services_settings.dsn
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield services_settings.model_copy(update={"source_dsn": _with_dbname(admin, name)})
    with psycopg.connect(admin, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def empty_lake(settings: Settings) -> None:
    """Delete every object of the lake buckets (creating them when missing)."""
    from minio.deleteobjects import DeleteObject

    from lite.services.s3 import client, ensure_buckets

    s3 = client(settings, timeout=30)
    ensure_buckets(settings)
    for bucket in LAKE_BUCKETS:
        doomed = [
            DeleteObject(o.object_name)
            for o in s3.list_objects(bucket, recursive=True)
            if o.object_name
        ]
        errors = list(s3.remove_objects(bucket, doomed)) if doomed else []
        assert not errors, f"could not empty {bucket}: {errors[:3]}"


@pytest.fixture
def s3_settings(services_settings: Settings) -> Settings:
    """Settings on the real S3, with the buckets bronze, silver and gold emptied first."""
    empty_lake(services_settings)
    return services_settings


@pytest.fixture
def folder_settings(tmp_path: Path) -> Settings:
    """Settings whose lake is a fresh local folder (no services needed for the lake)."""
    return settings_for_tests(data_dir=tmp_path / "data", lake_uri=str(tmp_path / "lake"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration is an integration test, marked or not."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def live_settings(
    pg_settings: Settings, s3_settings: Settings, redis_pool_settings: Settings
) -> Settings:
    """A fresh source database with the shop schema, the emptied S3 lake and the test Redis."""
    from jobs.adapters import source_db

    with source_db.session(pg_settings.dsn) as conn:
        source_db.ensure_schema(conn)
    return pg_settings
