"""CDC from PostgreSQL with the built-in ``pgoutput`` plugin: slot setup and a streaming reader.

The reader yields whole committed transactions as Debezium envelopes; the caller confirms a
transaction's ``end_lsn`` only once its alerts are durable, so a crash replays, never loses.
A change whose values cannot be decoded (e.g. bytes that are not UTF-8 in a SQL_ASCII
database) does not stop the stream: it comes with the transaction as a ``RejectedChange``
(position, raw values as text, reason), for the caller to keep beside the alerts.
"""

from __future__ import annotations

import re
import select
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from jobs.domain.change_events import PG_EPOCH, envelope, value_from_text

PUBLICATION = "shoplake_orders_pub"
_UNCHANGED = object()  # an unchanged TOASTed value: pgoutput does not resend it


def default_slot_name(dbname: str) -> str:
    """One slot per database (slots are cluster-wide), named after it."""
    return ("shoplake_alerts_" + re.sub(r"[^a-z0-9_]", "_", dbname.lower()))[:63]


@dataclass
class RejectedChange:
    """A change set aside: where it is, what it held (as text), and why."""

    lsn: int
    xid: int
    table: str  # schema.table
    op: str  # c, u or d
    raw: dict[str, str | None]
    reason: str

    def as_row(self) -> tuple[int, int, str, str, dict[str, str | None], str]:
        return (self.lsn, self.xid, self.table, self.op, self.raw, self.reason)


@dataclass
class Transaction:
    xid: int
    commit_ts_ms: int
    end_lsn: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[RejectedChange] = field(default_factory=list)


@dataclass
class Relation:
    schema: str
    table: str
    columns: list[tuple[str, int]]  # (name, type oid)


class PgOutputDecoder:
    """Decodes pgoutput protocol v1 messages into transactions of change envelopes."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.relations: dict[int, Relation] = {}
        self.current: Transaction | None = None

    def feed(self, payload: bytes, lsn: int) -> Transaction | None:
        """Take one message (and its WAL position); returns a transaction when it commits."""
        kind, body = payload[:1], memoryview(payload)[1:]
        if kind == b"B":
            _final, ts, xid = struct.unpack_from("!QqI", body)
            self.current = Transaction(xid=xid, commit_ts_ms=_ms(ts))
        elif kind == b"C":
            _flags, _commit, end, _ts = struct.unpack_from("!BQQq", body)
            done, self.current = self.current, None
            if done is not None:
                done.end_lsn = end
            return done
        elif kind == b"R":
            self._relation(body)
        elif kind in (b"I", b"U", b"D") and self.current is not None:
            self._change(kind, body, lsn)
        # O (origin), Y (type), T (truncate), M (message): nothing to alert on
        return None

    def _relation(self, body: memoryview) -> None:
        (relid,) = struct.unpack_from("!I", body)
        pos = 4
        schema, pos = _cstring(body, pos)
        table, pos = _cstring(body, pos)
        pos += 1  # replica identity setting
        (ncols,) = struct.unpack_from("!H", body, pos)
        pos += 2
        cols = []
        for _ in range(ncols):
            pos += 1  # flags (part of the key)
            name, pos = _cstring(body, pos)
            oid, _typmod = struct.unpack_from("!Ii", body, pos)
            pos += 8
            cols.append((name, oid))
        self.relations[relid] = Relation(schema, table, cols)

    def _change(self, kind: bytes, body: memoryview, lsn: int) -> None:
        (relid,) = struct.unpack_from("!I", body)
        rel, pos = self.relations[relid], 4
        raw_before = raw_after = None
        if kind in (b"U", b"D") and body[pos : pos + 1] in (b"K", b"O"):
            raw_before, pos = self._tuple(rel, body, pos + 1)
        if kind in (b"I", b"U"):
            raw_after, pos = self._tuple(rel, body, pos + 1)  # skip the 'N' marker
        op = {b"I": "c", b"U": "u", b"D": "d"}[kind]
        assert self.current is not None
        try:
            before = _values(rel, raw_before)
            after = _values(rel, raw_after)
        except ValueError as exc:  # set aside, with the reason; the stream goes on
            shown = raw_after if raw_after is not None else raw_before
            self.current.rejected.append(
                RejectedChange(
                    lsn=lsn,
                    xid=self.current.xid,
                    table=f"{rel.schema}.{rel.table}",
                    op=op,
                    raw={k: _raw_text(v) for k, v in (shown or {}).items()},
                    reason=str(exc),
                )
            )
            return
        if after is not None and before is not None:
            after = {k: before.get(k) if v is _UNCHANGED else v for k, v in after.items()}
        elif after is not None:
            after = {k: None if v is _UNCHANGED else v for k, v in after.items()}
        self.current.events.append(
            envelope(
                op,
                before,
                after,
                lsn=lsn,
                tx_id=self.current.xid,
                commit_ts_ms=self.current.commit_ts_ms,
                db=self.dbname,
                schema=rel.schema,
                table=rel.table,
            )
        )

    @staticmethod
    def _tuple(rel: Relation, body: memoryview, pos: int) -> tuple[dict[str, Any], int]:
        """The columns' raw values: bytes, None (null) or _UNCHANGED (a TOASTed value)."""
        (ncols,) = struct.unpack_from("!H", body, pos)
        pos += 2
        row: dict[str, Any] = {}
        for name, _oid in rel.columns[:ncols]:
            kind = body[pos : pos + 1].tobytes()
            pos += 1
            if kind == b"n":
                row[name] = None
            elif kind == b"u":
                row[name] = _UNCHANGED
            else:
                (size,) = struct.unpack_from("!I", body, pos)
                row[name] = bytes(body[pos + 4 : pos + 4 + size])
                pos += 4 + size
        return row, pos


def _values(rel: Relation, raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """Python values of a raw row; ValueError naming the column that cannot be read."""
    if raw is None:
        return None
    types = dict(rel.columns)
    row: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(value, bytes):
            row[name] = value  # None or _UNCHANGED
            continue
        try:
            row[name] = value_from_text(types[name], value.decode())
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"column {name} is not valid UTF-8 (byte 0x{value[exc.start]:02x} at {exc.start})"
            ) from exc
        except (ValueError, ArithmeticError) as exc:
            raise ValueError(f"column {name} (type oid {types[name]}): {exc}") from exc
    return row


def _raw_text(value: Any) -> str | None:
    """A raw value as text for the quarantine: undecodable bytes shown as \\xNN escapes."""
    if value is None or value is _UNCHANGED:
        return None
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)


def _cstring(body: memoryview, pos: int) -> tuple[str, int]:
    end = bytes(body[pos:]).index(b"\0") + pos
    return bytes(body[pos:end]).decode(), end + 1


def _ms(pg_micros: int) -> int:
    return int(PG_EPOCH.timestamp() * 1000) + pg_micros // 1000


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
