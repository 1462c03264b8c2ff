"""The dashboard's alerts warning: dead letters and set-aside changes, read from the ledger.

Self-contained on purpose (the metrics feeds live in ``web.feeds``): one daemon thread asks the
delivery ledger every ``poll_s`` seconds and keeps a short sentence, or None when all is well;
the page only reads that string, so a slow or absent database never blocks the page.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from jobs.alerts.ledger import postgres as ledger
from jobs.errors import first_line

log = logging.getLogger(__name__)


def trouble_text(summary: ledger.LedgerStatus) -> str | None:
    """'⚠ alerts: 2 dead letters (webhook 2) · 1 rejected change · see `shoplake alerts status`'."""
    dead = {sink: n["dead"] for sink, n in summary["sinks"].items() if n["dead"]}
    parts = []
    if dead:
        per_sink = ", ".join(f"{sink} {n}" for sink, n in sorted(dead.items()))
        total = sum(dead.values())
        parts.append(f"{total} dead letter{'s' if total != 1 else ''} ({per_sink})")
    for count, what in (
        (summary["rejected_changes"], "rejected change"),
        (summary["rejected_alerts"], "rejected alert"),
    ):
        if count:
            parts.append(f"{count} {what}{'s' if count != 1 else ''}")
    if not parts:
        return None
    return "⚠ alerts: " + " · ".join(parts) + " · see `shoplake alerts status`"


class AlertsHealth:
    """Polls ``ledger.status`` in the background; ``text`` is what the page shows."""

    def __init__(self, dsn: str, poll_s: float = 10.0) -> None:
        self.dsn, self.poll_s = dsn, poll_s
        self.text: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts-health", daemon=True)

    def poll_once(self) -> str | None:
        try:
            with psycopg.connect(self.dsn, connect_timeout=3) as conn:
                self.text = trouble_text(ledger.status(conn, recent=0))
        except psycopg.Error as exc:  # no database, no ledger yet: no warning to show
            log.debug("alerts health: %s", first_line(exc))
            self.text = None
        return self.text

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_s)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
