"""Airflow's start when one of standalone's components exits: standalone runs on without
it (measured: an API server that could not bind its port left the others running and the
start waited out its whole budget, 720 s, in CI). The start fails at once, naming the
component and its error, after one more try.

The clash is the one CI can meet: the API port is the local port of an outgoing
connection (any port in the ephemeral range can be), so nothing listens on it and the
start's port check passes, but the API server's bind fails.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from jobs.settings import Settings
from lite.services.airflow.service import AirflowService, ComponentExited, session_members

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return pg_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("af-start")})


class HeldPort:
    """An outgoing connection whose local port is the API port to be; ``release`` ends it
    the way that frees the port at once (the far side closes first, so the TIME_WAIT
    lands on the far side's port)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.conn = socket.create_connection(self.listener.getsockname())
        self.far, _ = self.listener.accept()
        self.port: int = self.conn.getsockname()[1]

    def release(self) -> None:
        self.far.close()
        self.conn.close()
        self.listener.close()


@pytest.fixture
def port_held() -> Iterator[HeldPort]:
    held = HeldPort()
    yield held
    held.release()


@pytest.fixture
def service(settings: Settings, port_held: HeldPort) -> Iterator[AirflowService]:
    database = f"airflow_t_{uuid.uuid4().hex[:10]}"
    svc = AirflowService(settings, port=port_held.port, database=database)
    yield svc
    svc.stop()
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def test_a_component_that_cannot_start_fails_the_start_naming_it(
    service: AirflowService, caplog: pytest.LogCaptureFixture
) -> None:
    launched: list[int] = []
    real_launch = service._launch

    def launch() -> tuple[int, int]:
        pid, since = real_launch()
        launched.append(pid)
        return pid, since

    service._launch = launch  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING), pytest.raises(ComponentExited) as failed:
        service.start()
    message = str(failed.value)
    assert "its api-server exited during start-up" in message
    assert "address already in use" in message
    # tried once more, then gave up: two launches, one warning
    assert len(launched) == 2
    assert sum("starting airflow once more" in r.message for r in caplog.records) == 1
    # nothing of either try is left running, and no pid file claims otherwise
    assert all(not session_members(pid) for pid in launched)
    assert service.pid() is None


def test_the_second_try_starts_once_the_port_is_free(
    service: AirflowService, port_held: HeldPort, caplog: pytest.LogCaptureFixture
) -> None:
    real_stop_session = service._stop_session

    def stop_session(pid: int | None) -> int:
        port_held.release()  # the outgoing connection ends between the two tries
        return real_stop_session(pid)

    service._stop_session = stop_session  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        status = service.start()
    assert status.running
    assert [r for r in caplog.records if "its api-server exited" in r.message]
    assert set(service.health().values()) == {"healthy"}
