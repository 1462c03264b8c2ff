"""The durable delivery ledger in PostgreSQL: each alert once, each (alert, sink) delivered once.

States of a delivery: ``pending`` -> ``sending`` (claimed, batch key recorded, committed before
the sink is called) -> ``delivered``, or ``dead`` (a dead letter: the sink refused it for good,
or it failed ``MAX_ATTEMPTS`` times; kept with the reason, never sent again). After a transient
failure the row goes back to ``pending`` with a ``not_before`` back-off, so later alerts pass it.
A ``sending`` row found at start-up was in flight when the
process died: it is "in doubt" and resent as the very same batch (idempotent for the lake and
the webhook's Idempotency-Key; Telegram has no idempotency, so its text says it may repeat).
Malformed messages from the alerts topic (flink engine) are kept in ``rejected_alerts``; order
changes the python engine cannot evaluate are kept in ``rejected_changes``.

The functions take a connection (the CLI, the dashboard and tests use them as they are);
``PgLedger`` puts them behind the ledger port for the engine and the delivery workers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypedDict

import psycopg

from jobs.alerts.ledger import BACKOFF_S, MAX_ATTEMPTS, MAX_BACKOFF_S
from jobs.alerts.model import Lost, Refused, RejectedChange, RejectedMessage, Rejection
from jobs.domain.alert import Alert
from jobs.domain.change_events import to_json
from jobs.errors import ServiceUnavailable, first_line

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS shoplake_alerts;
CREATE TABLE IF NOT EXISTS shoplake_alerts.alerts (
    alert_id   text PRIMARY KEY,
    seq        bigserial,
    source_lsn bigint NOT NULL,
    record     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS shoplake_alerts.alert_deliveries (
    alert_id     text NOT NULL REFERENCES shoplake_alerts.alerts ON DELETE CASCADE,
    sink         text NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'sending', 'delivered')),
    batch_key    text,
    attempts     int NOT NULL DEFAULT 0,
    in_doubt     boolean NOT NULL DEFAULT false,
    delivered_at timestamptz,
    PRIMARY KEY (alert_id, sink)
);
DO $$ BEGIN  -- a ledger from before dead letters: add them (once; ALTER locks the table)
IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'shoplake_alerts'
               AND table_name = 'alert_deliveries' AND column_name = 'last_error') THEN
    ALTER TABLE shoplake_alerts.alert_deliveries
        ADD COLUMN not_before timestamptz,
        ADD COLUMN last_error text,
        DROP CONSTRAINT IF EXISTS alert_deliveries_state_check,
        ADD CONSTRAINT alert_deliveries_state_check
            CHECK (state IN ('pending', 'sending', 'delivered', 'dead'));
END IF;
END $$;
CREATE INDEX IF NOT EXISTS alert_deliveries_open
    ON shoplake_alerts.alert_deliveries (sink, state) WHERE state <> 'delivered';
CREATE TABLE IF NOT EXISTS shoplake_alerts.rejected_alerts (
    topic           text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    reason          text NOT NULL,
    raw_value       bytea,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE TABLE IF NOT EXISTS shoplake_alerts.rejected_changes (
    source_lsn  bigint PRIMARY KEY,
    xid         bigint NOT NULL,
    table_name  text NOT NULL,
    op          text NOT NULL,
    raw_values  jsonb NOT NULL,
    reason      text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the ledger tables (idempotent); serialised so parallel starters do not race."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('shoplake.ledger'))")
        conn.execute(SCHEMA_SQL)


# pg_try_advisory_lock(classid, objid): a class of shoplake's own, the sink's name hashed
SINK_LOCK_CLASS = 0x53484C4B  # "SHLK"


def hold_sink(conn: psycopg.Connection, sink: str) -> bool:
    """Try to become the one deliverer to ``sink`` of this ledger; held until ``conn`` closes.

    A session-level advisory lock: a second delivery process (either engine) on the same
    ledger does not get it and must not claim or resend, since its "in doubt" batches would
    be the first process's batches still in flight. The lock goes with the connection, so a
    killed process's successor takes over at once.
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (SINK_LOCK_CLASS, sink)
        ).fetchone()
    return bool(row and row[0])


def record_alerts(
    conn: psycopg.Connection, alerts: Sequence[Mapping[str, Any]], sinks: Sequence[str]
) -> None:
    """Store alerts and one pending delivery per sink, in the caller's transaction.

    Replays (same alert_id) are no-ops, so a change seen twice alerts once.
    """
    if not alerts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO shoplake_alerts.alerts (alert_id, source_lsn, record) VALUES (%s, %s, %s)"
            " ON CONFLICT (alert_id) DO NOTHING",
            [(a["alert_id"], a["source_lsn"], to_json(a)) for a in alerts],
        )
        cur.executemany(
            "INSERT INTO shoplake_alerts.alert_deliveries (alert_id, sink) VALUES (%s, %s)"
            " ON CONFLICT (alert_id, sink) DO NOTHING",
            [(a["alert_id"], s) for a in alerts for s in sinks],
        )


def record_rejected(
    conn: psycopg.Connection, rejected: Sequence[tuple[str, int, int, str, bytes | None]]
) -> None:
    """Quarantine malformed alert messages (topic, partition, offset, reason, raw value).

    In the caller's transaction, beside the batch's good alerts; a replayed offset is a no-op.
    """
    if not rejected:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO shoplake_alerts.rejected_alerts"
            " (topic, kafka_partition, kafka_offset, reason, raw_value)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            list(rejected),
        )


def record_rejected_changes(
    conn: psycopg.Connection, rejected: Sequence[tuple[int, int, str, str, dict[str, Any], str]]
) -> None:
    """Set aside changes that could not be evaluated (lsn, xid, table, op, raw values, reason).

    In the caller's transaction, before the slot is confirmed past them; a replay is a no-op.
    """
    if not rejected:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO shoplake_alerts.rejected_changes"
            " (source_lsn, xid, table_name, op, raw_values, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(lsn, xid, t, op, json.dumps(raw), why) for lsn, xid, t, op, raw, why in rejected],
        )


def _records(rows: Iterable[tuple[Any, ...]]) -> list[Alert]:
    """The alerts in stored records (jsonb does not keep key order: the record does)."""
    return [
        Alert.from_record(raw if isinstance(raw, dict) else json.loads(raw)) for raw, *_ in rows
    ]


def pending(conn: psycopg.Connection, sink: str, limit: int) -> list[Alert]:
    """The oldest alerts not yet handed to ``sink``, in source order."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT a.record FROM shoplake_alerts.alert_deliveries d"
            " JOIN shoplake_alerts.alerts a USING (alert_id)"
            " WHERE d.sink = %s AND d.state = 'pending'"
            " AND (d.not_before IS NULL OR d.not_before <= now()) ORDER BY a.seq LIMIT %s",
            (sink, limit),
        ).fetchall()
    return _records(rows)


def in_doubt(conn: psycopg.Connection, sink: str) -> dict[str, list[Alert]]:
    """Batches that were in flight when a previous process stopped, by batch key."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries d SET in_doubt = true"
            " FROM shoplake_alerts.alerts a"
            " WHERE a.alert_id = d.alert_id AND d.sink = %s AND d.state = 'sending'"
            " RETURNING d.batch_key, a.record, a.seq",
            (sink,),
        ).fetchall()
    batches: dict[str, list[Alert]] = {}
    for key, record, _seq in sorted(rows, key=lambda r: r[2]):
        batches.setdefault(key, []).extend(_records([(record,)]))
    return batches


def claim(
    conn: psycopg.Connection, sink: str, alert_ids: Sequence[str], batch_key: str | None = None
) -> str:
    """Mark a batch as in flight (committed before the sink is called); returns its key."""
    key = batch_key or uuid.uuid4().hex
    with conn.transaction():
        conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries SET state = 'sending', batch_key = %s,"
            " attempts = attempts + 1 WHERE sink = %s AND alert_id = ANY(%s)",
            (key, sink, list(alert_ids)),
        )
    return key


def finish(conn: psycopg.Connection, sink: str, alert_ids: Sequence[str], ok: bool) -> None:
    """Delivered (never sent again) or, after a known failure, back to pending at once."""
    with conn.transaction():
        conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries SET state = %s, not_before = NULL,"
            " last_error = CASE WHEN %s THEN NULL ELSE last_error END,"
            " delivered_at = CASE WHEN %s THEN now() END WHERE sink = %s AND alert_id = ANY(%s)",
            ("delivered" if ok else "pending", ok, ok, sink, list(alert_ids)),
        )


def fail(
    conn: psycopg.Connection,
    sink: str,
    alert_ids: Sequence[str],
    error: str,
    permanent: bool,
    retry_after: float | None = None,
) -> int:
    """Record a failed hand-over; returns how many of the deliveries became dead letters.

    A permanent failure (the sink refused the alert itself) is a dead letter at once; a
    transient one goes back to pending with an exponential back-off (or the sink's own
    retry-after), and becomes a dead letter once it has had ``MAX_ATTEMPTS`` hand-overs.
    ``error`` must already be free of secrets: it is stored and shown by ``alerts status``.
    """
    with conn.transaction():
        rows = conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries SET"
            " state = CASE WHEN %(perm)s OR attempts >= %(max)s THEN 'dead' ELSE 'pending' END,"
            " last_error = CASE WHEN NOT %(perm)s AND attempts >= %(max)s"
            "   THEN 'gave up after ' || attempts || ' attempts: ' || %(err)s ELSE %(err)s END,"
            " not_before = now() + make_interval(secs => greatest(%(after)s::float8,"
            "   least(%(base)s * 2 ^ greatest(attempts - 1, 0), %(cap)s)))"
            " WHERE sink = %(sink)s AND alert_id = ANY(%(ids)s) RETURNING state",
            {
                "perm": permanent,
                "max": MAX_ATTEMPTS,
                "err": error[:2000],
                "after": retry_after or 0.0,
                "base": BACKOFF_S,
                "cap": MAX_BACKOFF_S,
                "sink": sink,
                "ids": list(alert_ids),
            },
        ).fetchall()
    return sum(1 for (state,) in rows if state == "dead")


def retry_dead(conn: psycopg.Connection, sink: str | None = None) -> int:
    """Give dead letters (of one sink, or all) a fresh start; returns how many."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries SET state = 'pending', attempts = 0,"
            " not_before = NULL WHERE state = 'dead' AND (%s::text IS NULL OR sink = %s)",
            (sink, sink),
        )
    return cur.rowcount


class SinkCounts(TypedDict):
    delivered: int
    pending: int
    sending: int
    dead: int
    oldest_pending: Any  # datetime of the oldest pending alert, None when none is


class DeadLetter(TypedDict):
    sink: str
    alert_id: str
    order_id: str | None
    attempts: int
    reason: str


class RejectedRow(TypedDict):
    source_lsn: int
    xid: int
    table: str
    op: str
    reason: str


class LedgerStatus(TypedDict):
    sinks: dict[str, SinkCounts]
    dead: list[DeadLetter]
    rejected_changes: int
    rejected_alerts: int
    recent_rejected: list[RejectedRow]


def status(conn: psycopg.Connection, recent: int = 5) -> LedgerStatus:
    """What ``shoplake alerts status`` and the dashboard show (read-only; no secrets inside).

    ``sinks``: per sink the count of deliveries in each state and the oldest pending age;
    ``dead``: the latest dead letters with their reason; ``rejected_changes`` and
    ``rejected_alerts``: how many changes / topic messages were set aside, with the latest.
    """
    out: LedgerStatus = {
        "sinks": {},
        "dead": [],
        "rejected_changes": 0,
        "rejected_alerts": 0,
        "recent_rejected": [],
    }
    with conn.transaction():
        if conn.execute("SELECT to_regclass('shoplake_alerts.alert_deliveries')").fetchone() == (
            None,
        ):
            return out
        has_new = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
            " 'shoplake_alerts' AND table_name = 'alert_deliveries' AND column_name = 'last_error'"
        ).fetchone()
        if not has_new or not has_new[0]:  # a ledger from before dead letters: not migrated
            return out
        for sink, state, count, oldest in conn.execute(
            "SELECT d.sink, d.state, count(*), min(a.created_at) FILTER (WHERE d.state = 'pending')"
            " FROM shoplake_alerts.alert_deliveries d JOIN shoplake_alerts.alerts a"
            " USING (alert_id) GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall():
            blank: SinkCounts = {
                "delivered": 0,
                "pending": 0,
                "sending": 0,
                "dead": 0,
                "oldest_pending": None,
            }
            entry = out["sinks"].setdefault(sink, blank)
            entry[state] = count  # type: ignore[literal-required]  # one of the four states
            if oldest is not None:
                entry["oldest_pending"] = oldest
        out["dead"] = [
            {"sink": sink, "alert_id": aid, "order_id": oid, "attempts": n, "reason": why}
            for sink, aid, oid, n, why in conn.execute(
                "SELECT d.sink, d.alert_id, a.record->>'order_id', d.attempts, d.last_error"
                " FROM shoplake_alerts.alert_deliveries d JOIN shoplake_alerts.alerts a"
                " USING (alert_id) WHERE d.state = 'dead' ORDER BY a.seq DESC LIMIT %s",
                (recent,),
            ).fetchall()
        ]
        for table in ("rejected_changes", "rejected_alerts"):
            if conn.execute("SELECT to_regclass(%s)", (f"shoplake_alerts.{table}",)).fetchone() != (
                None,
            ):
                row = conn.execute(f"SELECT count(*) FROM shoplake_alerts.{table}").fetchone()
                out[table] = int(row[0]) if row else 0
        if out["rejected_changes"]:
            out["recent_rejected"] = [
                {"source_lsn": lsn, "xid": xid, "table": t, "op": op, "reason": why}
                for lsn, xid, t, op, why in conn.execute(
                    "SELECT source_lsn, xid, table_name, op, reason"
                    " FROM shoplake_alerts.rejected_changes ORDER BY rejected_at DESC,"
                    " source_lsn DESC LIMIT %s",
                    (recent,),
                ).fetchall()
            ]
    return out


def trouble_count(conn: psycopg.Connection) -> int:
    """Dead letters plus set-aside changes: the one number a dashboard badge needs (0 = fine)."""
    summary = status(conn, recent=0)
    dead = sum(s["dead"] for s in summary["sinks"].values())
    return dead + summary["rejected_changes"] + summary["rejected_alerts"]


def drop_schema(conn: psycopg.Connection) -> None:
    """Forget every alert and delivery (``shoplake alerts reset --ledger``)."""
    with conn.transaction():
        conn.execute(
            "DROP TABLE IF EXISTS shoplake_alerts.alert_deliveries, shoplake_alerts.alerts,"
            " shoplake_alerts.rejected_alerts, shoplake_alerts.rejected_changes"
        )


# ---------------------------------------------------------------- the ledger port
def check_database(dsn: str) -> None:
    """Fail at once, in one line, when the ledger's database cannot be reached at start.

    A wrong DSN or a stopped server at start is the user's to fix; later losses are retried.
    """
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"alerts: cannot connect to PostgreSQL: {first_line(exc)}"
        ) from exc


LOST = "PostgreSQL connection"


class PgLedger:
    """The ledger in the PostgreSQL database at ``dsn`` (one connection per session)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def prepare(self) -> None:
        check_database(self.dsn)
        with _lost_as_lost(), psycopg.connect(self.dsn) as conn:
            ensure_schema(conn)

    @contextmanager
    def session(self) -> Iterator[PgSession]:
        with _lost_as_lost(), psycopg.connect(self.dsn) as conn:
            yield PgSession(conn)


@contextmanager
def _lost_as_lost() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise Lost(LOST, first_line(exc)) from exc


class PgSession:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def record(
        self, alerts: Sequence[Alert], rejected: Sequence[Rejection], sinks: Sequence[str]
    ) -> None:
        changes = [r.as_row() for r in rejected if isinstance(r, RejectedChange)]
        messages = [r.as_row() for r in rejected if isinstance(r, RejectedMessage)]
        try:
            with self.conn.transaction():
                record_alerts(self.conn, alerts, sinks)
                record_rejected_changes(self.conn, changes)
                record_rejected(self.conn, messages)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # e.g. a NUL in a text, which jsonb refuses
            raise Refused(first_line(exc)) from exc

    def known(self, alert_id: str) -> bool:
        """Whether ``alert_id`` is recorded already."""
        row = self.conn.execute(
            "SELECT 1 FROM shoplake_alerts.alerts WHERE alert_id = %s", (alert_id,)
        ).fetchone()
        self.conn.commit()
        return row is not None

    def hold_sink(self, sink: str) -> bool:
        return hold_sink(self.conn, sink)

    def in_doubt(self, sink: str) -> dict[str, list[Alert]]:
        return in_doubt(self.conn, sink)

    def pending(self, sink: str, limit: int) -> list[Alert]:
        return pending(self.conn, sink, limit)

    def claim(self, sink: str, alert_ids: Sequence[str], batch_key: str | None = None) -> str:
        return claim(self.conn, sink, alert_ids, batch_key)

    def finish(self, sink: str, alert_ids: Sequence[str], ok: bool) -> None:
        finish(self.conn, sink, alert_ids, ok)

    def fail(
        self,
        sink: str,
        alert_ids: Sequence[str],
        error: str,
        permanent: bool,
        retry_after: float | None = None,
    ) -> int:
        return fail(self.conn, sink, alert_ids, error, permanent, retry_after)
