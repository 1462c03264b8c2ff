"""A real Redis for the recommendation tests: the native service on a test port (58379).

Import ``redis_settings`` from a test module. Started through ``lite.services.redis``,
reused when already running, and stopped by PID only if this session started it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from jobs.settings import Settings
from tests.conftest import TEST_DATA_DIR, settings_for_tests

TEST_REDIS_PORT = int(os.environ.get("SHOPLAKE_TEST_REDIS_PORT") or 58379)


@pytest.fixture(scope="session")
def redis_settings() -> Iterator[Settings]:
    """Settings whose ``redis_url`` is a running native Redis (flushed before use)."""
    import redis

    from lite.services.redis import RedisService

    settings = settings_for_tests(
        data_dir=TEST_DATA_DIR / "reco", redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/0"
    )
    service = RedisService(settings)
    started = service.pid() is None
    service.start()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
    client.flushdb()
    client.close()
    yield settings
    if started:
        service.stop()
