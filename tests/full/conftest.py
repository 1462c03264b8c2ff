"""Full-profile fixtures: Trino, and the streaming side (Kafka, Connect + Debezium).

- ``trino_settings`` (session): Trino running on its own data dir and port.
- ``streaming_settings`` (session): full-profile settings with the native Kafka broker and
  Kafka Connect (Debezium PostgreSQL plugin loaded) running on the test ports, data dir
  ``<SHOPLAKE_TEST_DATA_DIR>/streaming``. Its ``source_dsn`` is the test PostgreSQL's
  ``shoplake`` database; use ``cdc_settings`` for a database with CDC.
- ``cdc_settings`` (function): ``streaming_settings`` on a fresh test database (from
  ``pg_settings``) holding the shop schema, with a unique ``cdc_topic_prefix``
  (``t<8 hex>``), so its changes go to ``settings.cdc_topic`` (``t....public.orders``),
  and the Debezium connector registered and streaming (snapshot ``no_data``: only changes
  committed after the fixture returns are captured). Teardown removes the connector and
  drops its replication slot and publication.
- ``flink_settings`` (session): ``streaming_settings`` with a Flink JobManager and
  TaskManager running on the test ports (same data dir and lease as Kafka and Connect).

Each group keeps its own data dir so that its lease (tests/conftest.py's ServicePool) is
apart from the core services' pool: only what a session started is stopped at its end.

Environment: SHOPLAKE_TEST_TRINO_PORT (28088), SHOPLAKE_TEST_KAFKA_PORT (29092; the KRaft
controller listens on +1), SHOPLAKE_TEST_CONNECT_PORT (28083), SHOPLAKE_TEST_FLINK_PORT
(28081, REST), SHOPLAKE_TEST_FLINK_RPC_PORT (26123).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from jobs.settings import Settings
from tests.conftest import TEST_DATA_DIR, ServicePool, _with_dbname

TEST_TRINO_PORT = int(os.environ.get("SHOPLAKE_TEST_TRINO_PORT") or 28088)
TEST_KAFKA_PORT = int(os.environ.get("SHOPLAKE_TEST_KAFKA_PORT") or 29092)
TEST_CONNECT_PORT = int(os.environ.get("SHOPLAKE_TEST_CONNECT_PORT") or 28083)
TEST_FLINK_PORT = int(os.environ.get("SHOPLAKE_TEST_FLINK_PORT") or 28081)
TEST_FLINK_RPC_PORT = int(os.environ.get("SHOPLAKE_TEST_FLINK_RPC_PORT") or 26123)
# the database Trino's postgres_source catalog reads (catalogs are fixed when Trino starts)
TRINO_SOURCE_DB = "shoplake_trino"


@pytest.fixture(scope="session")
def trino_settings(services_settings: Settings) -> Iterator[Settings]:
    """Full-profile settings with Trino running (started once, stopped if this session did)."""
    with psycopg.connect(services_settings.dsn, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (TRINO_SOURCE_DB,)
        ).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TRINO_SOURCE_DB)))
    settings = services_settings.model_copy(
        update={
            "profile": "full",
            "data_dir": TEST_DATA_DIR / "full",
            "source_dsn": _with_dbname(services_settings.dsn, TRINO_SOURCE_DB),
            # not a Settings field yet: jobs.adapters.trino.port() reads it when present
            "trino_port": TEST_TRINO_PORT,
        }
    )
    pool = ServicePool(settings)
    try:
        yield pool.ensure("trino")
    finally:
        pool.close()


@pytest.fixture(scope="session")
def streaming_settings(services_settings: Settings) -> Iterator[Settings]:
    """Full-profile settings with Kafka and Connect running (stopped if this session did)."""
    settings = services_settings.model_copy(
        update={
            "profile": "full",
            "data_dir": TEST_DATA_DIR / "streaming",
            "kafka_bootstrap": None,
            "kafka_port": TEST_KAFKA_PORT,
            "kafka_controller_port": TEST_KAFKA_PORT + 1,
            "connect_port": TEST_CONNECT_PORT,
        }
    )
    pool = ServicePool(settings)
    try:
        yield pool.ensure("kafka", "connect")
    finally:
        pool.close()


@pytest.fixture
def cdc_settings(pg_settings: Settings, streaming_settings: Settings) -> Iterator[Settings]:
    """A fresh database with the shop schema, captured by its own Debezium connector."""
    from jobs.adapters import debezium, kafka_io, source_db

    settings = streaming_settings.model_copy(
        update={
            "source_dsn": pg_settings.dsn,
            "cdc_topic_prefix": f"t{uuid.uuid4().hex[:8]}",
        }
    )
    with psycopg.connect(settings.dsn) as conn:
        source_db.ensure_schema(conn)
    debezium.register(settings)
    try:
        yield settings
    finally:
        debezium.unregister(settings)
        # one test's topics: a long-lived test broker would otherwise pile them up
        kafka_io.delete_topics(settings, [settings.cdc_topic, debezium.heartbeat_topic(settings)])


@pytest.fixture(scope="session")
def flink_settings(streaming_settings: Settings) -> Iterator[Settings]:
    """The streaming settings with a Flink JobManager + TaskManager running (test ports)."""
    settings = streaming_settings.model_copy(
        update={"flink_port": TEST_FLINK_PORT, "flink_rpc_port": TEST_FLINK_RPC_PORT}
    )
    pool = ServicePool(settings)
    try:
        yield pool.ensure("flink-jobmanager", "flink-taskmanager")
    finally:
        pool.close()
