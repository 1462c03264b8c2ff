"""PostgreSQL's ``pgoutput`` logical replication protocol (v1), decoded into transactions of
Debezium change envelopes.

A change whose values cannot be decoded (e.g. bytes that are not UTF-8 in a SQL_ASCII
database) does not stop the stream: it comes with the transaction as a ``RejectedChange``
(position, raw values as text, reason), for the caller to keep beside the alerts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from jobs.alerts.model import RejectedChange
from jobs.domain.change_events import PG_EPOCH, envelope, value_from_text

_UNCHANGED = object()  # an unchanged TOASTed value: pgoutput does not resend it


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
