"""The ledger protocol in a process's memory: what the PostgreSQL ledger does, for fast tests
of the exactly-once protocol (crashes between its steps are injected with ``fail_next``).

A value it ``refuses`` (any alert field equal to it) stands for what jsonb cannot hold.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from jobs.alerts import ledger as port
from jobs.alerts.model import Refused, Rejection
from jobs.domain.alert import Alert


@dataclass
class Delivery:
    state: str = "pending"  # pending | sending | delivered | dead
    batch_key: str | None = None
    attempts: int = 0
    in_doubt: bool = False
    not_before: float = 0.0  # on the ledger's clock
    last_error: str | None = None


class MemoryLedger:
    """Alerts in arrival order, deliveries per (alert, sink), set-aside items; thread-safe.

    ``clock`` is the time back-offs are measured on (a test moves it instead of sleeping).
    """

    def __init__(self, refuses: object = None) -> None:
        self.alerts: dict[str, Alert] = {}  # insertion order is the ledger's sequence
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.rejected: list[Rejection] = []
        self.refuses = refuses
        self.clock = 0.0
        self.holders: dict[str, object] = {}
        self.fail_next: dict[str, BaseException] = {}  # method name -> raised once, before it
        self._lock = threading.RLock()

    def prepare(self) -> None:
        return None

    @contextmanager
    def session(self) -> Iterator[MemorySession]:
        session = MemorySession(self)
        try:
            yield session
        finally:
            with self._lock:
                for sink in [s for s, h in self.holders.items() if h is session]:
                    del self.holders[sink]

    def state(self, sink: str) -> dict[str, str]:
        """alert_id -> delivery state for one sink."""
        with self._lock:
            return {aid: d.state for (aid, s), d in self.deliveries.items() if s == sink}

    def _maybe_fail(self, method: str) -> None:
        failure = self.fail_next.pop(method, None)
        if failure is not None:
            raise failure


class MemorySession:
    def __init__(self, ledger: MemoryLedger) -> None:
        self.ledger = ledger

    def record(
        self, alerts: Sequence[Alert], rejected: Sequence[Rejection], sinks: Sequence[str]
    ) -> None:
        led = self.ledger
        with led._lock:
            led._maybe_fail("record")
            if led.refuses is not None and any(led.refuses in a.values() for a in alerts):
                raise Refused(f"a value the ledger cannot hold: {led.refuses!r}")
            for alert in alerts:  # a replay (same alert_id) is a no-op
                led.alerts.setdefault(alert.alert_id, alert)
                for sink in sinks:
                    led.deliveries.setdefault((alert.alert_id, sink), Delivery())
            known = set(led.rejected)
            led.rejected.extend(r for r in rejected if r not in known)

    def hold_sink(self, sink: str) -> bool:
        with self.ledger._lock:
            holder = self.ledger.holders.setdefault(sink, self)
            return holder is self

    def in_doubt(self, sink: str) -> dict[str, list[Alert]]:
        led, batches = self.ledger, dict[str, list[Alert]]()
        with led._lock:
            for aid, alert in led.alerts.items():
                d = led.deliveries.get((aid, sink))
                if d is not None and d.state == "sending":
                    d.in_doubt = True
                    batches.setdefault(str(d.batch_key), []).append(alert)
        return batches

    def pending(self, sink: str, limit: int) -> list[Alert]:
        led, due = self.ledger, []
        with led._lock:
            for aid, alert in led.alerts.items():
                d = led.deliveries.get((aid, sink))
                if d is not None and d.state == "pending" and d.not_before <= led.clock:
                    due.append(alert)
        return due[:limit]

    def claim(self, sink: str, alert_ids: Sequence[str], batch_key: str | None = None) -> str:
        key = batch_key or uuid.uuid4().hex
        with self.ledger._lock:
            self.ledger._maybe_fail("claim")
            for d in self._rows(sink, alert_ids):
                d.state, d.batch_key, d.attempts = "sending", key, d.attempts + 1
        return key

    def finish(self, sink: str, alert_ids: Sequence[str], ok: bool) -> None:
        with self.ledger._lock:
            self.ledger._maybe_fail("finish")
            for d in self._rows(sink, alert_ids):
                d.state, d.not_before = ("delivered" if ok else "pending"), 0.0
                if ok:
                    d.last_error = None

    def fail(
        self,
        sink: str,
        alert_ids: Sequence[str],
        error: str,
        permanent: bool,
        retry_after: float | None = None,
    ) -> int:
        dead = 0
        with self.ledger._lock:
            for d in self._rows(sink, alert_ids):
                gave_up = not permanent and d.attempts >= port.MAX_ATTEMPTS
                d.state = "dead" if permanent or gave_up else "pending"
                d.last_error = f"gave up after {d.attempts} attempts: {error}" if gave_up else error
                backoff = min(port.BACKOFF_S * 2 ** max(d.attempts - 1, 0), port.MAX_BACKOFF_S)
                d.not_before = self.ledger.clock + max(retry_after or 0.0, backoff)
                dead += d.state == "dead"
        return dead

    def _rows(self, sink: str, alert_ids: Sequence[str]) -> list[Delivery]:
        rows = self.ledger.deliveries
        return [rows[(aid, sink)] for aid in alert_ids if (aid, sink) in rows]
