"""What every open tab shows: the latest metrics message and where it came from."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

WAITING, LIVE, POLLING = "waiting", "live", "polling"


@dataclass(frozen=True)
class View:
    """One consistent read of the state."""

    version: int
    message: dict[str, Any] | None
    mode: str
    detail: str
    received: float  # time.time() of the last accepted message, 0 before the first


class LiveState:
    """Shared by the feeds (writers, threads) and the pages (readers, the event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._message: dict[str, Any] | None = None
        self._version = 0
        self._mode = WAITING
        self._detail = "waiting for the first metrics run"
        self._received = 0.0

    def accept(self, message: dict[str, Any]) -> bool:
        """Keep ``message`` unless it is older than what we show (feeds may race)."""
        stamp = _stamp(message)
        with self._lock:
            if self._message is not None and stamp <= _stamp(self._message):
                return False
            self._message, self._received = message, time.time()
            self._version += 1
            return True

    def set_mode(self, mode: str, detail: str) -> None:
        with self._lock:
            self._mode, self._detail = mode, detail

    def view(self) -> View:
        with self._lock:
            return View(self._version, self._message, self._mode, self._detail, self._received)


def _stamp(message: dict[str, Any]) -> str:
    # ISO 8601 UTC strings of one format sort like the instants they name
    return str(message.get("metrics", {}).get("overall_metrics", {}).get("last_updated", ""))
