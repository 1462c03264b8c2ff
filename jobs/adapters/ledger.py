"""The durable delivery ledger in PostgreSQL: each alert once, each (alert, sink) delivered once.

States of a delivery: ``pending`` -> ``sending`` (claimed, batch key recorded, committed before
the sink is called) -> ``delivered``. A ``sending`` row found at start-up was in flight when the
process died: it is "in doubt" and resent as the very same batch (idempotent for the lake and
the webhook's Idempotency-Key; Telegram has no idempotency, so its text says it may repeat).
Malformed messages from the alerts topic (full profile) are kept in ``rejected_alerts``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from jobs.domain.change_events import to_json
from jobs.domain.rules import ALERT_FIELDS

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
    conn: psycopg.Connection, alerts: Sequence[dict[str, Any]], sinks: Sequence[str]
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


def _records(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Records in the field order of the alert contract (jsonb does not keep key order)."""
    out = []
    for raw, *_rest in rows:
        rec = raw if isinstance(raw, dict) else json.loads(raw)
        out.append({k: rec[k] for k in ALERT_FIELDS if k in rec} | rec)
    return out


def pending(conn: psycopg.Connection, sink: str, limit: int) -> list[dict[str, Any]]:
    """The oldest alerts not yet handed to ``sink``, in source order."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT a.record FROM shoplake_alerts.alert_deliveries d"
            " JOIN shoplake_alerts.alerts a USING (alert_id)"
            " WHERE d.sink = %s AND d.state = 'pending' ORDER BY a.seq LIMIT %s",
            (sink, limit),
        ).fetchall()
    return _records(rows)


def in_doubt(conn: psycopg.Connection, sink: str) -> dict[str, list[dict[str, Any]]]:
    """Batches that were in flight when a previous process stopped, by batch key."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries d SET in_doubt = true"
            " FROM shoplake_alerts.alerts a"
            " WHERE a.alert_id = d.alert_id AND d.sink = %s AND d.state = 'sending'"
            " RETURNING d.batch_key, a.record, a.seq",
            (sink,),
        ).fetchall()
    batches: dict[str, list[dict[str, Any]]] = {}
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
    """Delivered (never sent again) or, after a known failure, back to pending."""
    with conn.transaction():
        conn.execute(
            "UPDATE shoplake_alerts.alert_deliveries SET state = %s,"
            " delivered_at = CASE WHEN %s THEN now() END WHERE sink = %s AND alert_id = ANY(%s)",
            ("delivered" if ok else "pending", ok, sink, list(alert_ids)),
        )


def drop_schema(conn: psycopg.Connection) -> None:
    """Forget every alert and delivery (``shoplake alerts reset --ledger``)."""
    with conn.transaction():
        conn.execute(
            "DROP TABLE IF EXISTS shoplake_alerts.alert_deliveries, shoplake_alerts.alerts,"
            " shoplake_alerts.rejected_alerts"
        )
