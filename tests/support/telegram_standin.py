"""A local Telegram Bot API stand-in speaking the real wire format (POST /bot<token>/sendMessage).

It records every accepted message and can be told to answer the next calls with 429 (and
``parameters.retry_after``) or 500, like the real API under load or during an outage, with a
400 Bad Request (as for "chat not found"), or with a redirect; texts over 4,096 characters
get the real API's 400 "message is too long".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Sent:
    token: str
    chat_id: str
    text: str
    at: float  # time.monotonic() when accepted


class TelegramStandIn:
    """Run with ``with TelegramStandIn(token) as api:``; ``api.url`` is the Bot API base URL."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[Sent] = []
        self.requests = 0
        self._faults: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` sendMessage calls with ``status`` (429, 5xx, 400, 3xx)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def texts(self) -> list[str]:
        with self._lock:
            return [s.text for s in self.sent]

    def __enter__(self) -> TelegramStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            if path != f"/bot{self.token}/sendMessage":
                return 401 if path.endswith("/sendMessage") else 404, {
                    "ok": False,
                    "error_code": 401,
                    "description": "Unauthorized",
                }
            if self._faults:
                status, retry_after = self._faults.pop(0)
                if status == 429:
                    return 429, {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {retry_after}",
                        "parameters": {"retry_after": retry_after},
                    }
                description = {
                    400: "Bad Request: chat not found",
                    403: "Forbidden: bot was blocked by the user",
                }.get(status, "Internal Server Error" if status >= 500 else "Moved")
                return status, {"ok": False, "error_code": status, "description": description}
            payload = json.loads(body)
            if not payload.get("chat_id") or not payload.get("text"):
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message text is empty",
                }
            if len(payload["text"]) > 4096:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message is too long",
                }
            self.sent.append(
                Sent(self.token, str(payload["chat_id"]), payload["text"], time.monotonic())
            )
            return 200, {
                "ok": True,
                "result": {
                    "message_id": len(self.sent),
                    "date": int(time.time()),
                    "chat": {"id": payload["chat_id"], "type": "private"},
                    "text": payload["text"],
                },
            }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = standin._answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{standin.url}/moved{self.path}")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass  # the path holds the token: never print it

        return Handler
