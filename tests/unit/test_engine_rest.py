"""Connect's and Trino's REST calls through the shared client, against loopback stand-ins.

Connect's stand-in answers as Kafka Connect does (JSON ``error_code`` and ``message``):
``ConnectError`` keeps the status that callers read (404, 409).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from jobs.adapters import debezium, trino
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from tests.support.platform_up import free_ports

RUNNING = {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]}


class Connect(BaseHTTPRequestHandler):
    connectors: ClassVar[dict[str, dict[str, str]]] = {}

    def _reply(self, status: int, body: object) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _missing(self, name: str) -> None:
        self._reply(404, {"error_code": 404, "message": f"Connector {name} not found"})

    def do_GET(self) -> None:
        name = self.path.split("/")[2]
        if name in self.connectors:
            self._reply(200, RUNNING | {"name": name})
        else:
            self._missing(name)

    def do_PUT(self) -> None:
        name = self.path.split("/")[2]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("rebalance"):
            self._reply(409, {"error_code": 409, "message": "rebalance is in progress"})
            return
        self.connectors[name] = body
        self._reply(201, {"name": name, "config": body})

    def do_DELETE(self) -> None:
        name = self.path.split("/")[2]
        if self.connectors.pop(name, None) is None:
            self._missing(name)
        else:
            self.send_response(204)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def settings(tmp_path) -> Iterator[Settings]:
    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), Connect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Connect.connectors = {}
    try:
        yield Settings(_env_file=None, data_dir=tmp_path, connect_port=port)
    finally:
        server.shutdown()
        server.server_close()


def test_an_absent_connector_has_no_status(settings: Settings) -> None:
    assert debezium.status(settings) is None
    name = debezium.connector_name(settings)
    debezium.rest(settings, "PUT", f"/connectors/{name}/config", {"x": "1"})
    assert debezium.status(settings) == RUNNING | {"name": name}
    assert debezium.rest(settings, "DELETE", f"/connectors/{name}") is None


def test_error_statuses_are_connect_errors_with_connects_message(settings: Settings) -> None:
    with pytest.raises(debezium.ConnectError) as info:
        debezium.rest(settings, "PUT", "/connectors/c/config", {"rebalance": True})
    assert info.value.status == 409
    assert str(info.value) == "Kafka Connect: HTTP 409: rebalance is in progress"
    with pytest.raises(ServiceUnavailable, match="HTTP 404: Connector gone not found"):
        debezium.rest(settings, "DELETE", "/connectors/gone")


def test_no_worker_is_unavailable_with_the_way_to_start_it(tmp_path) -> None:
    (port,) = free_ports(1)
    down = Settings(_env_file=None, data_dir=tmp_path, connect_port=port)
    with pytest.raises(ServiceUnavailable, match=r"Kafka Connect at .* does not answer.*start"):
        debezium.status(down)


class TrinoInfo(BaseHTTPRequestHandler):
    starting = True

    def do_GET(self) -> None:
        raw = json.dumps({"nodeVersion": {"version": "476"}, "starting": self.starting}).encode()
        self.send_response(200 if self.path == "/v1/info" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def test_trino_answers_once_past_its_start(tmp_path) -> None:
    (port,) = free_ports(1)
    settings = Settings(_env_file=None, data_dir=tmp_path, trino_port=port)
    assert not trino.answering(settings, timeout=1)  # nothing listens yet
    server = ThreadingHTTPServer(("127.0.0.1", port), TrinoInfo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        TrinoInfo.starting = True
        assert not trino.answering(settings)
        TrinoInfo.starting = False
        assert trino.answering(settings)
    finally:
        server.shutdown()
        server.server_close()
