"""Full-profile fixtures: one Trino per test session, on its own data dir and port.

Environment: SHOPLAKE_TEST_TRINO_PORT (58088). Trino's data dir is
``<SHOPLAKE_TEST_DATA_DIR>/full`` so that its lease (tests/conftest.py's ServicePool)
is kept apart from the core services' pool.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from jobs.settings import Settings
from tests.conftest import TEST_DATA_DIR, ServicePool, _with_dbname

TEST_TRINO_PORT = int(os.environ.get("SHOPLAKE_TEST_TRINO_PORT") or 58088)
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
