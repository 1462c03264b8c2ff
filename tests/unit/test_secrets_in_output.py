"""What the API logs and what ``shoplake up`` / ``services status`` print carries no secret."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import pytest

from api.cache import RecoCache
from jobs.settings import Settings
from lite.services.airflow.service import PASSWORD_FILE, AirflowService


def test_the_api_never_logs_the_redis_password(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = RecoCache(f"redis://:hunter2-redis@127.0.0.1:{port}/0")

    async def miss() -> str:
        try:
            return (await cache.get("k"))[1]
        finally:
            await cache.close()

    with caplog.at_level(logging.WARNING, logger="api.cache"):
        assert asyncio.run(miss()) == "unavailable"
    assert f"127.0.0.1:{port}" in caplog.text  # where, so the operator can act
    assert "hunter2-redis" not in caplog.text + cache.last_error


def test_airflow_says_where_its_password_is_never_what_it_is(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    airflow = AirflowService(settings)
    airflow.home.mkdir(parents=True)
    (airflow.home / PASSWORD_FILE).write_text(json.dumps({"admin": "Xy9-airflow-pw"}))
    assert airflow.password() == "Xy9-airflow-pw"  # the tests log in with it
    line = airflow.describe()
    assert "Xy9-airflow-pw" not in line
    assert str(airflow.home / PASSWORD_FILE) in line and "admin" in line
