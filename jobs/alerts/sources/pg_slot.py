"""The python engine's source: PostgreSQL's logical slot (``pgoutput``), rules evaluated here.

Setup is idempotent (REPLICA IDENTITY FULL, the publication, the slot). The reader yields
whole committed transactions as Debezium envelopes; a transaction's ``end_lsn`` is confirmed
only once its alerts are durable, so a crash replays, never loses.
"""

from __future__ import annotations

import datetime as dt
import re
import select
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg

from jobs.alerts.model import Batch, Lost, Rejected, RejectedChange
from jobs.alerts.sources.pgoutput import PgOutputDecoder, Transaction
from jobs.domain.alert import Alert
from jobs.domain.rules import alerts_for_change
from jobs.errors import ServiceUnavailable, first_line

PUBLICATION = "shoplake_orders_pub"
FLUSH_EVERY_S = 0.05  # most time a change may wait before its batch is made durable
FLUSH_MAX_CHANGES = 2000
Change = dict[str, Any]  # a Debezium change envelope


def default_slot_name(dbname: str) -> str:
    """One slot per database (slots are cluster-wide), named after it."""
    return ("shoplake_alerts_" + re.sub(r"[^a-z0-9_]", "_", dbname.lower()))[:63]


# ---------------------------------------------------------------- slot and publication
def ensure_slot(dsn: str, slot: str | None = None) -> str:
    """Create (idempotently) REPLICA IDENTITY FULL, the publication and the slot; returns the slot.

    FULL makes updates and deletes carry the whole ``before`` row, which "newly broken" needs.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        dbname = str(conn.info.dbname)
        slot = slot or default_slot_name(dbname)
        conn.execute("ALTER TABLE public.orders REPLICA IDENTITY FULL")
        if not conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)
        ).fetchone():
            conn.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE public.orders")
        if not conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone():
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    return slot


def drop_slot(dsn: str, slot: str | None = None) -> list[str]:
    """Drop the slot (stopping its reader) and the publication; returns what was dropped."""
    dropped = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        slot = slot or default_slot_name(str(conn.info.dbname))
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is not None:
            if row[0] is not None:
                conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            dropped.append(f"slot {slot}")
        if conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)
        ).fetchone():
            conn.execute(f"DROP PUBLICATION {PUBLICATION}")
            dropped.append(f"publication {PUBLICATION}")
    return dropped


# ---------------------------------------------------------------- streaming reader
class SlotReader:
    """Streams committed transactions from the slot; ``confirm`` moves the slot forward."""

    def __init__(
        self, dsn: str, slot: str, status_interval: float = 5.0, ping_interval: float = 5.0
    ) -> None:
        import psycopg2  # imported here: only the CDC reader needs the replication protocol
        import psycopg2.extras

        self._conn = psycopg2.connect(
            dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        self._cur = self._conn.cursor()
        self._cur.start_replication(
            slot_name=slot,
            decode=False,
            status_interval=status_interval,
            options={"proto_version": "1", "publication_names": PUBLICATION},
        )
        self.decoder = PgOutputDecoder(self._conn.info.dbname)
        self.confirmed = 0
        self.ping_interval, self._last_ping = ping_interval, 0.0

    def poll(self, timeout: float) -> Iterator[Transaction]:
        """Committed transactions available now (waiting up to ``timeout`` for the first)."""
        waited = False
        while True:
            msg = self._cur.read_message()
            if msg is None:
                if waited:
                    return
                select.select([self._cur], [], [], timeout)
                waited = True
                continue
            tx = self.decoder.feed(msg.payload, msg.data_start)
            if tx is not None:
                yield tx

    def confirm(self, lsn: int) -> None:
        """Tell the server everything up to ``lsn`` is durably handled (flush feedback)."""
        if lsn > self.confirmed:
            self.confirmed = lsn
            self._cur.send_feedback(write_lsn=lsn, flush_lsn=lsn, reply=False)

    def confirm_idle(self) -> None:
        """Between transactions, confirm the server's WAL end so idle time pins no WAL.

        Safe: pgoutput decodes in commit order, so any later commit lies beyond this point.
        Every ``ping_interval`` we ask for a keepalive, whose position covers WAL of other
        tables and skipped empty transactions.
        """
        if self.decoder.current is not None:
            return
        if self._cur.wal_end:
            self.confirm(self._cur.wal_end)
        if time.monotonic() - self._last_ping > self.ping_interval:
            self._last_ping = time.monotonic()
            self._cur.send_feedback(reply=True)

    def close(self) -> None:
        self._conn.close()


# ---------------------------------------------------------------- the source
class SlotSource:
    """Changes of ``public.orders`` from the slot, evaluated against the rules with ``params``."""

    refused = "the ledger refused its alerts"

    def __init__(
        self,
        dsn: str,
        params: Mapping[str, Decimal],
        slot: str | None = None,
        ping_interval: float = 5.0,
    ) -> None:
        self.dsn, self.params, self.slot = dsn, params, slot
        self.ping_interval = ping_interval
        self.reader: SlotReader | None = None

    @property
    def what(self) -> str:
        return f"reading slot {self.slot}"

    @property
    def is_open(self) -> bool:
        return self.reader is not None

    def open(self) -> None:
        with _errors():
            self.slot = ensure_slot(self.dsn, self.slot)
            self.reader = SlotReader(self.dsn, self.slot, ping_interval=self.ping_interval)

    def poll(self) -> Batch[Change]:
        """Committed transactions for a moment (``FLUSH_EVERY_S``) or up to a size."""
        assert self.reader is not None, "poll() before open()"
        batch: Batch[Change] = Batch(items=[])
        items: list[Change] = []
        started = time.monotonic()
        with _errors():
            for tx in self.reader.poll(timeout=0.5):
                items.extend(tx.events)
                batch.rejected.extend(tx.rejected)
                batch.position = tx.end_lsn
                if len(items) >= FLUSH_MAX_CHANGES or time.monotonic() - started > FLUSH_EVERY_S:
                    break
        batch.items = items
        return batch

    def alerts(self, item: Change) -> list[Alert]:
        try:
            return alerts_for_change(item, self.params, dt.datetime.now(dt.UTC))
        except Exception as exc:  # a bug or a value the rules trip on: keep it, go on
            raise Rejected(f"evaluating the rules failed: {exc!r}") from exc

    def reject(self, item: Change, reason: str) -> RejectedChange:
        source = item.get("source") or {}
        row = item.get("after") if item.get("after") is not None else item.get("before")
        return RejectedChange(
            lsn=int(source.get("lsn") or 0),
            xid=int(source.get("txId") or 0),
            table=f"{source.get('schema')}.{source.get('table')}",
            op=str(item.get("op")),
            raw={k: None if v is None else str(v) for k, v in (row or {}).items()},
            reason=reason,
        )

    def confirm(self, batch: Batch[Change]) -> None:
        assert self.reader is not None, "confirm() before open()"
        with _errors():
            if isinstance(batch.position, int) and batch.position:
                self.reader.confirm(batch.position)
            else:
                self.reader.confirm_idle()

    def close(self) -> None:
        if self.reader is not None:
            reader, self.reader = self.reader, None
            reader.close()


@contextmanager
def _errors() -> Iterator[None]:
    """A lost connection (either driver) is ``Lost``; other database errors end the run."""
    import psycopg2  # imported here: only the slot reader needs the replication protocol

    try:
        yield
    except (psycopg.OperationalError, psycopg2.OperationalError) as exc:
        raise Lost("PostgreSQL connection", first_line(exc)) from exc
    except psycopg.Error as exc:  # e.g. wal_level is not logical, no orders table
        raise ServiceUnavailable(f"alerts: cannot read changes: {first_line(exc)}") from exc
