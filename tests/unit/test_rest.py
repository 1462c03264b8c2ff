"""The shared REST client against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.adapters.rest import Rest, RestError
from jobs.errors import ServiceUnavailable
from tests.support.platform_up import free_ports


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/jobs":
            self._reply(200, b'{"jobs": [{"id": "a"}]}')
        elif self.path == "/empty":
            self._reply(204, b"")
        elif self.path == "/html":
            self._reply(200, b"<html>", "text/html")
        else:
            self._reply(404, b'{"errors": ["Not found: /nope"]}')

    def do_PUT(self) -> None:
        n = int(self.headers["Content-Length"])
        got = json.loads(self.rfile.read(n))
        if got.get("bad"):
            self._reply(409, b'{"error_code": 409, "message": "rebalance in progress"}')
        else:
            self._reply(201, json.dumps({"echo": got}).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[Rest]:
    (port,) = free_ports(1)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Rest("Test API", f"http://127.0.0.1:{port}/", hint="start it")
    finally:
        server.shutdown()
        server.server_close()


def test_json_in_and_out(api: Rest) -> None:
    assert api.get("/jobs") == {"jobs": [{"id": "a"}]}
    assert api.call("PUT", "/c", {"x": 1}) == {"echo": {"x": 1}}
    assert api.get("/empty") is None


def test_error_statuses_carry_the_servers_message(api: Rest) -> None:
    with pytest.raises(RestError, match="Test API: HTTP 404: Not found: /nope") as info:
        api.get("/nope")
    assert info.value.status == 404
    with pytest.raises(RestError, match="rebalance in progress") as info:
        api.call("PUT", "/c", {"bad": True})
    assert info.value.status == 409


def test_no_server_and_no_json_are_unavailable(api: Rest) -> None:
    with pytest.raises(ServiceUnavailable, match="sent no JSON"):
        api.get("/html")
    (port,) = free_ports(1)
    down = Rest("Flink JobManager", f"http://127.0.0.1:{port}", hint="start it", timeout=1)
    with pytest.raises(
        ServiceUnavailable, match=r"Flink JobManager at .* does not answer GET /x .*; start it"
    ):
        down.get("/x")
