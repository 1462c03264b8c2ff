"""Feed the shared state: Redis pub/sub while it answers, else polling the lake."""

from __future__ import annotations

import logging
import threading
from typing import Any

from jobs.bootstrap import Resources
from jobs.dashboard_metrics import EVENT, read_latest
from jobs.domain.dashboard import dump_update
from jobs.errors import ShoplakeError
from jobs.settings import Settings
from web.state import LIVE, POLLING, LiveState

log = logging.getLogger(__name__)


class Feeds:
    """A Redis listener thread and a lake poller thread, stopped together."""

    def __init__(self, of: Settings | Resources, state: LiveState, poll_s: float = 5.0) -> None:
        self.resources = Resources.of(of)
        self.state = state
        self.poll_s = poll_s
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._load_latest()
        for name, target in (("redis-listener", self._listen), ("lake-poller", self._poll)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=3)

    def _listen(self) -> None:
        self.resources.dashboard.listen(self._accept, self._on_redis, self.stop)

    def _accept(self, message: dict[str, Any]) -> None:
        self.state.accept(message)

    def _on_redis(self, connected: bool, detail: str) -> None:
        if connected:
            self.state.set_mode(LIVE, "live: Redis pub/sub")
            self._load_latest()  # catch up on what was published while we were away
        else:
            log.warning("%s; polling the lake every %.0f s", detail, self.poll_s)
            self.state.set_mode(POLLING, f"{detail}: polling the lake every {self.poll_s:.0f} s")

    def _poll(self) -> None:
        while not self.stop.wait(self.poll_s):
            if self.state.view().mode != LIVE:
                self._from_lake()

    def _load_latest(self) -> None:
        try:
            metrics = self.resources.dashboard.latest()
        except ShoplakeError:
            metrics = None
        if metrics:
            self.state.accept(_wrap(metrics))
        else:
            self._from_lake()

    def _from_lake(self) -> None:
        try:
            update = read_latest(self.resources.lake)
        except ShoplakeError as exc:
            log.warning("dashboard: cannot read the lake: %s", exc)
            return
        if update is not None:
            self.state.accept(dump_update(update))


def _wrap(metrics: Any) -> dict[str, Any]:
    """``dashboard:latest_metrics`` (untrusted) as a message; ``LiveState`` validates it."""
    inner = metrics if isinstance(metrics, dict) else {}
    overall = inner.get("overall_metrics")
    stamp = overall.get("last_updated") if isinstance(overall, dict) else None
    run_id = inner.get("run_id")
    return {
        "event": EVENT,
        "timestamp": stamp if isinstance(stamp, str) else None,
        "run_id": run_id if isinstance(run_id, str) else None,
        "metrics": metrics,
    }
