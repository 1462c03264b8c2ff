"""A local HTTP receiver for the webhook sink: every POST with its Idempotency-Key and time."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hook:
    key: str | None  # the Idempotency-Key header (the alert_id)
    body: dict[str, Any]
    at: float  # time.time() when received


class WebhookReceiver:
    """Run with ``with WebhookReceiver() as hook:``; ``hook.url`` is where to POST."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook = Hook(self.headers.get("Idempotency-Key"), json.loads(body), time.time())
                with outer._lock:
                    outer.received.append(hook)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def hooks(self) -> list[Hook]:
        with self._lock:
            return list(self.received)

    def keys(self) -> list[str | None]:
        return [h.key for h in self.hooks()]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
