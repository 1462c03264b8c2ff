"""A local HTTP receiver for the webhook sink: every POST with its Idempotency-Key and time.

It can refuse alerts the way real receivers do: for ever for some alerts (413 Payload Too
Large, 422 Unprocessable Entity, a 3xx redirect), or for the next few calls (500, 503, 429
with Retry-After). Refused calls are counted per key in ``attempts`` but not ``received``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
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

    def __init__(self, path: str = "/hook") -> None:
        self.received: list[Hook] = []
        self.attempts: Counter[str | None] = Counter()
        self._refuse: list[tuple[Callable[[dict[str, Any]], bool], int]] = []
        self._faults: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook = Hook(self.headers.get("Idempotency-Key"), json.loads(body), time.time())
                status, retry_after = outer._answer(hook)
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                if 300 <= status < 400:
                    self.send_header("Location", f"{outer.url}/moved")
                if status >= 300:
                    text = f"refused with {status}".encode()
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                else:
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def refuse(self, status: int, when: Callable[[dict[str, Any]], bool]) -> None:
        """Always answer ``status`` to alerts (JSON bodies) for which ``when`` is true."""
        with self._lock:
            self._refuse.append((when, status))

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``count`` POSTs with ``status`` (5xx, or 429 with Retry-After)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def _answer(self, hook: Hook) -> tuple[int, float | None]:
        with self._lock:
            self.attempts[hook.key] += 1
            for when, status in self._refuse:
                if when(hook.body):
                    return status, None
            if self._faults:
                return self._faults.pop(0)
            self.received.append(hook)
            return 204, None

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
