"""One delivery worker per sink: pending alerts from the ledger -> claim -> send -> finish.

A claimed batch is recorded as in flight (with its key) before the sink is called; one found
in flight at start was cut off by a crash and is resent whole, as "in doubt". A failure is a
dead letter when the sink refused the alert for good, else a retry after a back-off, so the
alerts behind it go on. One process delivers to a sink of a ledger at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from jobs.alerts.ledger import Ledger, LedgerSession
from jobs.alerts.sinks import DeliveryError, Sink
from jobs.alerts.sinks.base import redact
from jobs.domain.alert import Alert
from jobs.errors import first_line

log = logging.getLogger(__name__)


class DeliveryWorker(threading.Thread):
    """Hands one sink its pending alerts, in order, batch by batch."""

    def __init__(
        self,
        ledger: Ledger,
        sink: Sink,
        stop: threading.Event,
        limit: int = 1000,
        restart_s: float = 5.0,
        pause_s: float = 1.0,
    ) -> None:
        super().__init__(name=f"deliver-{sink.name}", daemon=True)
        self.ledger, self.sink, self.stop, self.limit = ledger, sink, stop, limit
        self.restart_s = restart_s  # after the worker itself failed (e.g. the ledger went)
        self.pause_s = pause_s  # after a transient failure of the sink
        self.wake = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._serve()
            except Exception:  # a dead worker would silently stop delivery: log, start over
                log.exception(
                    "%s: delivery worker failed; restarting in %.0fs",
                    self.sink.name,
                    self.restart_s,
                )
                self.stop.wait(self.restart_s)

    def _serve(self) -> None:
        with self.ledger.session() as session:
            if not self._hold_sink(session):
                return
            self.resend_in_doubt(session)
            while not self.stop.is_set():
                self.wake.clear()  # before the query, so a wake-up during it is not lost
                if not self.deliver_pending(session):
                    self.wake.wait(1.0)

    def resend_in_doubt(self, session: LedgerSession) -> None:
        """Batches a previous deliverer left in flight, resent whole (same key), once."""
        for key, batch in session.in_doubt(self.sink.name).items():
            self._hand_over(session, batch, key, in_doubt=True)

    def deliver_pending(self, session: LedgerSession) -> bool:
        """One round over the due alerts, batch by batch; False when none was due."""
        alerts = session.pending(self.sink.name, self.limit)
        for group in self.sink.plan(alerts):
            if not self._hand_over(session, group, None) or self.stop.is_set():
                break
        return bool(alerts)

    def _hold_sink(self, session: LedgerSession, retry_s: float = 1.0) -> bool:
        """Wait until no other process delivers to this sink from this ledger; False on stop."""
        waited = False
        while not session.hold_sink(self.sink.name):
            if not waited:
                log.warning(
                    "%s: another delivery process is delivering from this ledger;"
                    " standing by until it stops",
                    self.sink.name,
                )
                waited = True
            if self.stop.wait(retry_s):
                return False
        if waited:
            log.info("%s: taking over delivery", self.sink.name)
        return True

    def _hand_over(
        self,
        session: LedgerSession,
        group: Sequence[Alert],
        key: str | None,
        in_doubt: bool = False,
    ) -> bool:
        """Send one batch; on failure record it and return False (the caller re-reads the
        ledger, so rows in back-off wait and the alerts behind them go on)."""
        ids = [a.alert_id for a in group]
        key = session.claim(self.sink.name, ids, key)
        try:
            self.sink.send(group, batch_key=key, in_doubt=in_doubt)
        except Exception as exc:  # any sink failure: dead letter, or retry after a back-off
            failure = self._failure(exc)
            if failure.permanent and len(group) > 1:
                # which alert was refused? each on its own, so only that one is a dead letter
                session.finish(self.sink.name, ids, ok=False)
                for alert in group:
                    if self.stop.is_set():
                        break
                    self._hand_over(session, [alert], None, in_doubt)
                return False
            dead = session.fail(
                self.sink.name,
                ids,
                str(failure),
                permanent=failure.permanent,
                retry_after=failure.retry_after,
            )
            if dead:
                log.error(
                    "%s: %d alert(s) set aside as dead letters (see `shoplake alerts status`): %s",
                    self.sink.name,
                    dead,
                    failure,
                )
            else:
                log.warning(
                    "%s: %d alert(s) kept for a retry: %s", self.sink.name, len(ids), failure
                )
                self.stop.wait(self.pause_s)  # the sink struggles: a breath before the next batch
            return False
        session.finish(self.sink.name, ids, ok=True)
        return True

    def _failure(self, exc: Exception) -> DeliveryError:
        if isinstance(exc, DeliveryError):
            return exc
        text = f"{self.sink.name}: {type(exc).__name__}: {first_line(exc)}"
        return DeliveryError(redact(text, self.sink.secrets))


def start_workers(
    ledger: Ledger, sinks: Sequence[Sink], halt: threading.Event
) -> list[DeliveryWorker]:
    """One running DeliveryWorker per sink; they stop when ``halt`` is set."""
    workers = [DeliveryWorker(ledger, sink, halt) for sink in sinks]
    for worker in workers:
        worker.start()
    return workers


def stop_workers(workers: Sequence[DeliveryWorker], halt: threading.Event) -> None:
    halt.set()
    for worker in workers:
        worker.join(timeout=15)
