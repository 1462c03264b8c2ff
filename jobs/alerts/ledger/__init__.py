"""The delivery ledger port: alerts recorded once, each (alert, sink) handed over once.

``postgres`` is the real one (its docstring tells the states of a delivery); ``memory``
keeps the same protocol in a process, for tests of the exactly-once protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from jobs.alerts.model import Rejection
from jobs.domain.alert import Alert

MAX_ATTEMPTS = 8  # hand-overs of one delivery before a transient failure makes it a dead letter
BACKOFF_S, MAX_BACKOFF_S = 5.0, 600.0  # pause before the n-th retry: 5 s, 10 s, ... 10 min


class LedgerSession(Protocol):
    """One connection to the ledger (a sink's hold lasts as long as it)."""

    def record(
        self, alerts: Sequence[Alert], rejected: Sequence[Rejection], sinks: Sequence[str]
    ) -> None:
        """Alerts (once each, a pending delivery per sink) and set-aside items, atomically.

        ``model.Refused`` when a value cannot be stored, ``model.Lost`` when the ledger went.
        """
        ...

    def hold_sink(self, sink: str) -> bool:
        """Become the one deliverer to ``sink`` (until the session ends); False if taken."""
        ...

    def in_doubt(self, sink: str) -> dict[str, list[Alert]]:
        """Batches in flight when a previous deliverer stopped, by batch key."""
        ...

    def pending(self, sink: str, limit: int) -> list[Alert]:
        """The oldest alerts due for ``sink``, in source order."""
        ...

    def claim(self, sink: str, alert_ids: Sequence[str], batch_key: str | None = None) -> str:
        """Mark a batch in flight (durable before the sink is called); its key."""
        ...

    def finish(self, sink: str, alert_ids: Sequence[str], ok: bool) -> None:
        """Delivered, or back to pending at once."""
        ...

    def fail(
        self,
        sink: str,
        alert_ids: Sequence[str],
        error: str,
        permanent: bool,
        retry_after: float | None = None,
    ) -> int:
        """A failed hand-over: a dead letter, or pending after a back-off; how many died."""
        ...


class Ledger(Protocol):
    def prepare(self) -> None:
        """Reachable, tables ready: ``ServiceUnavailable`` at start is the user's to fix."""
        ...

    def session(self) -> AbstractContextManager[LedgerSession]: ...
