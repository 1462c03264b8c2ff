"""What every open tab shows: the latest metrics message and where it came from."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from jobs.domain.dashboard import DashboardUpdate, parse_update

WAITING, LIVE, POLLING = "waiting", "live", "polling"


@dataclass(frozen=True)
class View:
    """One consistent read of the state."""

    version: int
    message: DashboardUpdate | None
    mode: str
    detail: str
    received: float  # time.time() of the last accepted message, 0 before the first


class LiveState:
    """Shared by the feeds (writers, threads) and the pages (readers, the event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._message: DashboardUpdate | None = None
        self._version = 0
        self._mode = WAITING
        self._detail = "waiting for the first metrics run"
        self._received = 0.0
        self._stamp: dt.datetime | None = None

    def accept(self, message: Any) -> bool:
        """Keep ``message`` unless it is malformed (logged) or older than what we show.

        Messages come from Redis, which anyone reaching it can write: each is parsed into
        the publisher's typed model first, and freshness compares instants (feeds may race).
        """
        update = parse_update(message)
        if update is None:
            return False
        stamp = update.last_updated
        with self._lock:
            if self._stamp is not None and stamp <= self._stamp:
                return False
            self._message, self._stamp, self._received = update, stamp, time.time()
            self._version += 1
            return True

    def set_mode(self, mode: str, detail: str) -> None:
        with self._lock:
            self._mode, self._detail = mode, detail

    def view(self) -> View:
        with self._lock:
            return View(self._version, self._message, self._mode, self._detail, self._received)
