"""The server process freezes what it loaded at start-up; apps built by tests do not."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

from starlette.testclient import TestClient

from api.app import create_app
from jobs.adapters.registry.local import LocalRegistry
from jobs.settings import Settings


def settings(tmp_path: Path) -> Settings:
    with socket.socket() as sock:  # a loopback port nobody listens on: Redis is not needed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Settings(_env_file=None, data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")  # type: ignore[call-arg]


def test_the_server_freezes_its_start_up_objects(tmp_path: Path) -> None:
    gc.unfreeze()
    try:
        app = create_app(settings(tmp_path), LocalRegistry(tmp_path), freeze_gc=True)
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 10_000  # modules, classes, the app
            assert client.get("/health").status_code == 503  # no model yet: still serving
    finally:
        gc.unfreeze()


def test_an_app_built_without_the_flag_leaves_the_collector_alone(tmp_path: Path) -> None:
    gc.unfreeze()
    with TestClient(create_app(settings(tmp_path), LocalRegistry(tmp_path))):
        assert gc.get_freeze_count() == 0
