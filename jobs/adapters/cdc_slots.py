"""What shoplake's replication slots hold back: one line per slot for ``shoplake status``.

Both engines keep their slot across stops (the python alert engine's ``shoplake_alerts_<db>``,
Debezium's ``shoplake_dbz_<prefix>``), so a change made while the platform is stopped
alerts at the next start. The price is WAL the server keeps for a slot nobody reads;
``max_slot_wal_keep_size`` (config/postgres/shoplake.conf) bounds it, and once a slot passes
the bound PostgreSQL invalidates it (``wal_status = lost``): these lines say how close each is.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from jobs.adapters.source_db import connect
from jobs.errors import ServiceUnavailable

SLOT_PREFIX = "shoplake_"


@dataclass(frozen=True)
class SlotState:
    name: str
    active: bool
    pinned_bytes: int | None  # WAL from the slot's restart point to the current end
    wal_status: str | None  # reserved | extended | unreserved | lost
    safe_bytes: int | None  # WAL still writable before it is invalidated; None: unbounded

    def line(self) -> str:
        reading = "streaming" if self.active else "idle (kept for the next start)"
        head = f"cdc slot {self.name}: {reading}"
        if self.wal_status == "lost":
            return (
                f"{head}; LOST: it passed max_slot_wal_keep_size and PostgreSQL removed the "
                "WAL it needed, so changes from then on cannot be replayed: drop it "
                "(shoplake alerts reset / shoplake cdc unregister) and start again"
            )
        pinned = _size(self.pinned_bytes or 0)
        bound = (
            "no bound (max_slot_wal_keep_size = -1)"
            if self.safe_bytes is None
            else f"{_size(self.safe_bytes)} more before it is invalidated"
        )
        return f"{head}, pins {pinned} of WAL ({self.wal_status}; {bound})"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def slots(conn: psycopg.Connection) -> list[SlotState]:
    """shoplake's logical slots in the cluster, by name."""
    rows = conn.execute(
        "SELECT slot_name, active,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,"
        " wal_status, safe_wal_size"
        " FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name LIKE %s"
        " ORDER BY slot_name",
        (SLOT_PREFIX + "%",),
    ).fetchall()
    return [SlotState(r[0], bool(r[1]), r[2], r[3], r[4]) for r in rows]


def slot_lines(dsn: str) -> list[str]:
    """One line per slot; none when PostgreSQL is down (``status`` says so on its own line)."""
    try:
        with connect(dsn, autocommit=True) as conn:
            return [s.line() for s in slots(conn)]
    except (psycopg.Error, ServiceUnavailable):
        return []
