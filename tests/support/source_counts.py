"""Exact row counts of the source tables (count(*): fine for tests, too slow for the CLI)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from jobs.adapters.source_db import TABLE_SCHEMAS


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row count of each source table."""
    counts: dict[str, int] = {}
    for name in TABLE_SCHEMAS:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        ).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts
