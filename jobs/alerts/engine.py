"""The one engine loop of both engines: poll a source, evaluate, record durably, confirm.

Exactly once: a batch's alerts (and the items set aside) are committed to the ledger before
the source is confirmed past them, so a crash between the two replays a batch whose alerts
the ledger already holds (same deterministic ``alert_id``: no duplicate), and never loses
one. Delivery workers (one per sink, ``delivery``) hand the recorded alerts over.

A lost connection (``model.Lost``) closes the source and opens it again after
``retry_every`` seconds (from its last confirmed position); without ``retry_every`` it ends
the run as ServiceUnavailable. Failures while starting are the user's to fix: they end it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from jobs.alerts.delivery import DeliveryWorker, start_workers, stop_workers
from jobs.alerts.ledger import Ledger, LedgerSession
from jobs.alerts.model import Lost, Refused, Rejected, Rejection, Reopen
from jobs.alerts.sinks import Sink
from jobs.alerts.sources import AlertSource
from jobs.domain.alert import Alert
from jobs.errors import ServiceUnavailable

log = logging.getLogger(__name__)


def run(
    source: AlertSource[Any],
    ledger: Ledger,
    sinks: Sequence[Sink],
    stop: threading.Event,
    retry_every: float | None = None,
) -> None:
    """Run until ``stop`` is set; the sinks are closed at the end."""
    halt = threading.Event()  # stops the workers once the reading side has stopped
    workers: list[DeliveryWorker] = []
    try:
        ledger.prepare()
        try:
            source.open()
        except Lost as exc:
            raise ServiceUnavailable(exc.at_start) from exc
        workers = start_workers(ledger, sinks, halt)
        while not stop.is_set():
            try:
                _pump(source, ledger, [s.name for s in sinks], workers, stop)
            except Reopen as exc:
                log.warning("alerts: %s; reopening it", exc)
                source.close()
            except Lost as exc:
                source.close()
                if retry_every is None:
                    raise ServiceUnavailable(exc.at_start) from exc
                log.warning("alerts: %s; retrying in %.0fs", exc, retry_every)
                stop.wait(retry_every)
    finally:
        stop_workers(workers, halt)
        source.close()
        for sink in sinks:
            sink.close()


def _pump(
    source: AlertSource[Any],
    ledger: Ledger,
    sink_names: list[str],
    workers: list[DeliveryWorker],
    stop: threading.Event,
) -> None:
    """Steps on one ledger session until ``stop`` (or an error for ``run`` to handle)."""
    with ledger.session() as session:
        if not source.is_open:
            source.open()
        log.info("alerts: %s, delivering to %s", source.what, ", ".join(sink_names))
        while not stop.is_set():
            if step(source, session, sink_names):
                for worker in workers:
                    worker.wake.set()


def step(source: AlertSource[Any], session: LedgerSession, sink_names: Sequence[str]) -> int:
    """One batch: evaluate, record (alerts and set-aside items at once), confirm; the number
    of alerts recorded. An item that gives no alert is set aside and the stream goes on."""
    batch = source.poll()
    found: list[tuple[Any, list[Alert]]] = []
    rejected: list[Rejection] = list(batch.rejected)
    for item in batch.items:
        try:
            found.append((item, source.alerts(item)))
        except Rejected as exc:
            rejected.append(source.reject(item, str(exc)))
    count = sum(len(alerts) for _, alerts in found)
    if found or rejected:
        _record(source, session, found, rejected, sink_names)
    source.confirm(batch)  # only now: what the batch gave is durable
    return count


def _record(
    source: AlertSource[Any],
    session: LedgerSession,
    found: list[tuple[Any, list[Alert]]],
    rejected: list[Rejection],
    sink_names: Sequence[str],
) -> None:
    """In one transaction; when the ledger refuses a value, item by item, and the items whose
    alerts it refuses are set aside too (a replay of the stored ones is a no-op)."""
    try:
        session.record([a for _, alerts in found for a in alerts], rejected, sink_names)
    except Refused as exc:
        log.warning("alerts: storing a batch failed (%s); storing it item by item", exc)
        for item, alerts in found:
            try:
                session.record(alerts, [], sink_names)
            except Refused as refused:
                rejected.append(source.reject(item, f"{source.refused}: {refused}"))
        session.record([], rejected, sink_names)
    for rejection in rejected:
        log.warning("alerts: %s", rejection.line())
