"""Read-only views of the ledger for the dashboard: the latest alerts and their deliveries.

Beside ``postgres`` (which writes the ledger) so that the dashboard's reads do not grow it;
the shaping is ``jobs.domain.alerts_view``.
"""

from __future__ import annotations

import psycopg

from jobs.alerts.ledger import postgres as ledger
from jobs.domain.alerts_view import AlertsView, alert_rows, sink_totals

CONNECT_TIMEOUT_S = 3


def recent(conn: psycopg.Connection, limit: int = 50, rule: str | None = None) -> AlertsView:
    """The latest ``limit`` alerts (of ``rule``, or of every rule), newest first, with each
    sink's delivery state; the per-sink totals and the rules seen, for the filter."""
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('shoplake_alerts.alert_deliveries')").fetchone()
    if exists == (None,):
        return AlertsView(alerts=[], sinks=[], rules=[], total=0, rule=rule)
    summary = ledger.status(conn, recent=0)  # the same sink totals as `alerts status`
    with conn.transaction():
        rules = [
            str(r)
            for (r,) in conn.execute(
                "SELECT DISTINCT record->>'alert_type' FROM shoplake_alerts.alerts"
                " WHERE record->>'alert_type' IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        count = conn.execute(
            "SELECT count(*) FROM shoplake_alerts.alerts"
            " WHERE %(rule)s::text IS NULL OR record->>'alert_type' = %(rule)s",
            {"rule": rule},
        ).fetchone()
        rows = conn.execute(
            "SELECT a.alert_id, a.record, a.created_at, d.sink, d.state, d.attempts, d.last_error"
            " FROM (SELECT alert_id, seq, record, created_at FROM shoplake_alerts.alerts"
            "       WHERE %(rule)s::text IS NULL OR record->>'alert_type' = %(rule)s"
            "       ORDER BY seq DESC LIMIT %(limit)s) a"
            " LEFT JOIN shoplake_alerts.alert_deliveries d USING (alert_id)"
            " ORDER BY a.seq DESC, d.sink",
            {"rule": rule, "limit": limit},
        ).fetchall()
    return AlertsView(
        alerts=alert_rows(rows),
        sinks=sink_totals(summary["sinks"]),
        rules=rules,
        total=int(count[0]) if count else 0,
        rule=rule,
    )


def read_recent(dsn: str, limit: int = 50, rule: str | None = None) -> AlertsView:
    """``recent`` on a short-lived connection (psycopg.Error when the database is away)."""
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        return recent(conn, limit=limit, rule=rule)
