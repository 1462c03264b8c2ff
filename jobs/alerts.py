"""The streaming alerts use case: CDC changes -> rules -> durable ledger -> sinks.

Ordering that makes delivery exactly-once: a batch of committed source transactions is
evaluated, its alerts are committed to the ledger, and only then is the slot confirmed up to
those transactions. Delivery workers (one per sink) hand ledger rows over and mark them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from typing import Literal

import psycopg

from jobs.adapters import cdc_pg, ledger
from jobs.adapters.alert_sinks import DeliveryError, Sink
from jobs.adapters.alert_sinks.base import redact
from jobs.domain.rules import alerts_for_change
from jobs.errors import ServiceUnavailable, first_line
from jobs.settings import Settings

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 0.05  # most time an alert may wait before its batch is made durable
FLUSH_MAX_ALERTS = 2000
TELEGRAM_HINT = (
    "Telegram is not configured, so alerts go to the console; set "
    "SHOPLAKE_TELEGRAM_BOT_TOKEN and SHOPLAKE_TELEGRAM_CHAT_ID to receive them there"
)


def build_sinks(
    settings: Settings,
    stop: threading.Event,
    *,
    console: bool | None = None,
    console_fmt: Literal["text", "json"] = "text",
    lake: bool = True,
) -> list[Sink]:
    """The sinks the settings ask for; the console when Telegram is not configured."""
    from jobs.adapters.alert_sinks.console import ConsoleSink

    sinks: list[Sink] = []
    if settings.telegram_bot_token and settings.telegram_chat_id:
        from jobs.adapters.alert_sinks.telegram import TelegramSink

        sinks.append(
            TelegramSink(
                settings.telegram_api_url,
                settings.telegram_bot_token.get_secret_value(),
                settings.telegram_chat_id,
                wait=stop.wait,
            )
        )
    elif console is None:
        log.info(TELEGRAM_HINT)
        console = True
    if settings.alert_webhook_url:
        from jobs.adapters.alert_sinks.webhook import WebhookSink

        sinks.append(WebhookSink(settings.alert_webhook_url, wait=stop.wait))
    if console:
        sinks.append(ConsoleSink(fmt=console_fmt))
    if lake:
        from jobs.adapters.alert_sinks.lake import LakeSink
        from jobs.bootstrap import lake_for

        sinks.append(LakeSink(lake_for(settings)))
    return sinks


class DeliveryWorker(threading.Thread):
    """Hands one sink its pending alerts, in order, batch by batch."""

    def __init__(self, dsn: str, sink: Sink, stop: threading.Event, limit: int = 1000) -> None:
        super().__init__(name=f"deliver-{sink.name}", daemon=True)
        self.dsn, self.sink, self.stop, self.limit = dsn, sink, stop, limit
        self.wake = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._serve()
            except Exception:  # a dead worker would silently stop delivery: log, start over
                log.exception("%s: delivery worker failed; restarting in 5s", self.sink.name)
                self.stop.wait(5.0)

    def _serve(self) -> None:
        with psycopg.connect(self.dsn) as conn:
            if not self._hold_sink(conn):
                return
            for key, batch in ledger.in_doubt(conn, self.sink.name).items():
                self._hand_over(conn, batch, key, in_doubt=True)
            while not self.stop.is_set():
                self.wake.clear()  # before the query, so a wake-up during it is not lost
                alerts = ledger.pending(conn, self.sink.name, self.limit)
                if not alerts:
                    self.wake.wait(1.0)
                    continue
                for group in self.sink.plan(alerts):
                    if not self._hand_over(conn, group, None) or self.stop.is_set():
                        break

    def _hold_sink(self, conn: psycopg.Connection, retry_s: float = 1.0) -> bool:
        """Wait until no other process delivers to this sink from this ledger; False on stop."""
        waited = False
        while not ledger.hold_sink(conn, self.sink.name):
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
        conn: psycopg.Connection,
        group: Sequence[dict],
        key: str | None,
        in_doubt: bool = False,
    ) -> bool:
        """Send one batch; on failure record it and return False (the caller re-reads the
        ledger, so rows in back-off wait and the alerts behind them go on)."""
        ids = [a["alert_id"] for a in group]
        key = ledger.claim(conn, self.sink.name, ids, key)
        try:
            self.sink.send(group, batch_key=key, in_doubt=in_doubt)
        except Exception as exc:  # any sink failure: dead letter, or retry after a back-off
            failure = (
                exc
                if isinstance(exc, DeliveryError)
                else DeliveryError(
                    redact(
                        f"{self.sink.name}: {type(exc).__name__}: {first_line(exc)}",
                        self.sink.secrets,
                    )
                )
            )
            if failure.permanent and len(group) > 1:
                # which alert was refused? each on its own, so only that one is a dead letter
                ledger.finish(conn, self.sink.name, ids, ok=False)
                for alert in group:
                    if self.stop.is_set():
                        break
                    self._hand_over(conn, [alert], None, in_doubt)
                return False
            dead = ledger.fail(
                conn,
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
                self.stop.wait(1.0)  # the sink is struggling: a breath before the next batch
            return False
        ledger.finish(conn, self.sink.name, ids, ok=True)
        return True


def check_database(settings: Settings) -> None:
    """Fail at once, in one line, when the ledger's database cannot be reached at start.

    A wrong DSN or a stopped server at start is the user's to fix; later losses are retried.
    """
    try:
        psycopg.connect(settings.dsn, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"alerts: cannot connect to PostgreSQL: {first_line(exc)}"
        ) from exc


def start_workers(dsn: str, sinks: Sequence[Sink], halt: threading.Event) -> list[DeliveryWorker]:
    """One running DeliveryWorker per sink; they stop when ``halt`` is set."""
    workers = [DeliveryWorker(dsn, sink, halt) for sink in sinks]
    for worker in workers:
        worker.start()
    return workers


def run_alerts(
    settings: Settings,
    stop: threading.Event,
    sinks: Sequence[Sink] | None = None,
    slot: str | None = None,
    ping_interval: float = 5.0,
    reconnect_every: float | None = None,
) -> None:
    """Run until ``stop`` is set: read the slot, record alerts durably, confirm, deliver.

    With ``reconnect_every`` a lost database connection is retried (the slot resumes where
    it was confirmed); without it, it ends the run as ServiceUnavailable.
    """
    import psycopg2

    check_database(settings)
    sinks = list(sinks) if sinks is not None else build_sinks(settings, stop)
    try:
        while not stop.is_set():
            try:
                _run_once(settings, stop, sinks, slot, ping_interval)
            except (psycopg.OperationalError, psycopg2.OperationalError) as exc:
                reason = first_line(exc)
                if reconnect_every is None:
                    raise ServiceUnavailable(f"alerts: PostgreSQL lost: {reason}") from exc
                log.warning(
                    "alerts: PostgreSQL connection lost (%s); retrying in %.0fs",
                    reason,
                    reconnect_every,
                )
                stop.wait(reconnect_every)
            except psycopg.Error as exc:  # e.g. wal_level is not logical, no orders table
                raise ServiceUnavailable(f"alerts: cannot read changes: {first_line(exc)}") from exc
    finally:
        for sink in sinks:
            sink.close()


def _run_once(
    settings: Settings,
    stop: threading.Event,
    sinks: list[Sink],
    slot: str | None,
    ping_interval: float,
) -> None:
    dsn, params = settings.dsn, settings.alert_params()
    halt = threading.Event()  # stops this round's workers, also when the round fails
    with psycopg.connect(dsn) as conn:
        ledger.ensure_schema(conn)
        slot = cdc_pg.ensure_slot(dsn, slot)
        workers = start_workers(dsn, sinks, halt)
        try:
            reader = cdc_pg.SlotReader(dsn, slot, ping_interval=ping_interval)
            log.info(
                "alerts: reading slot %s, delivering to %s", slot, ", ".join(s.name for s in sinks)
            )
            try:
                while not stop.is_set():
                    _step(reader, conn, params, [s.name for s in sinks], workers)
            finally:
                reader.close()
        finally:
            halt.set()
            for worker in workers:
                worker.join(timeout=15)


def _step(
    reader: cdc_pg.SlotReader,
    conn: psycopg.Connection,
    params: dict,
    sink_names: list[str],
    workers: list[DeliveryWorker],
) -> None:
    """One micro-batch: collect committed transactions briefly, make their alerts durable.

    A change that cannot be evaluated is set aside (``rejected_changes``) in the same ledger
    transaction as the alerts, so confirming the slot past it neither loses nor replays it.
    """
    per_change: list[tuple[dict, list[dict]]] = []
    rejected: list[cdc_pg.RejectedChange] = []
    count, last_end, started = 0, 0, time.monotonic()
    for tx in reader.poll(timeout=0.5):
        now = dt.datetime.now(dt.UTC)
        rejected.extend(tx.rejected)
        for event in tx.events:
            try:
                found = alerts_for_change(event, params, now)
            except Exception as exc:  # a bug or a value the rules trip on: keep it, go on
                rejected.append(_rejection(event, f"evaluating the rules failed: {exc!r}"))
                continue
            per_change.append((event, found))
            count += len(found)
        last_end = tx.end_lsn
        if count >= FLUSH_MAX_ALERTS or time.monotonic() - started > FLUSH_EVERY_S:
            break
    if per_change or rejected:
        _record(conn, per_change, rejected, sink_names)
        if count:
            for worker in workers:
                worker.wake.set()
    if last_end:
        reader.confirm(last_end)  # only now: the alerts of these transactions are durable
    else:
        reader.confirm_idle()


def _rejection(event: dict, reason: str) -> cdc_pg.RejectedChange:
    source = event.get("source") or {}
    row = event.get("after") if event.get("after") is not None else event.get("before")
    return cdc_pg.RejectedChange(
        lsn=int(source.get("lsn") or 0),
        xid=int(source.get("txId") or 0),
        table=f"{source.get('schema')}.{source.get('table')}",
        op=str(event.get("op")),
        raw={k: None if v is None else str(v) for k, v in (row or {}).items()},
        reason=reason,
    )


def _record(
    conn: psycopg.Connection,
    per_change: list[tuple[dict, list[dict]]],
    rejected: list[cdc_pg.RejectedChange],
    sink_names: list[str],
) -> None:
    """Alerts and set-aside changes in one transaction; a change whose alerts the ledger
    refuses (a value jsonb cannot hold) is found one by one and set aside too."""
    for change in rejected:
        log.warning(
            "alerts: set aside the change at %s (xid %d, %s): %s",
            lsn_text(change.lsn),
            change.xid,
            change.table,
            change.reason,
        )
    try:
        with conn.transaction():
            ledger.record_alerts(conn, [a for _, found in per_change for a in found], sink_names)
            ledger.record_rejected_changes(conn, [r.as_row() for r in rejected])
        return
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        log.warning("alerts: storing a batch failed (%s); storing it change by change", exc)
    with conn.transaction():
        for event, found in per_change:
            try:
                with conn.transaction():  # a savepoint: one refused change spoils nothing else
                    ledger.record_alerts(conn, found, sink_names)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                change = _rejection(event, f"the ledger refused its alerts: {first_line(exc)}")
                log.warning("alerts: set aside the change at %s: %s", lsn_text(change.lsn), exc)
                rejected.append(change)
        ledger.record_rejected_changes(conn, [r.as_row() for r in rejected])


def lsn_text(lsn: int) -> str:
    """PostgreSQL's own notation of a WAL position (what pg_replication_slots shows)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def reset(settings: Settings, slot: str | None = None, purge_ledger: bool = False) -> list[str]:
    """Drop the slot and publication (and, if asked, the delivery ledger)."""
    dropped = cdc_pg.drop_slot(settings.dsn, slot)
    if purge_ledger:
        with psycopg.connect(settings.dsn) as conn:
            ledger.drop_schema(conn)
        dropped.append("ledger tables")
    return dropped
