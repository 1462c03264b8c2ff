"""The lake's Parquet datasets as external Hive tables in Trino, plus the DuckDB-named views.

Tables are ``lake.<bucket>.<dataset>`` over ``s3://<bucket>/<dataset>/`` with the partition
column ``date``; their columns come from the same DuckDB views ``shoplake sql`` uses, so
both engines see one schema. Views ``lake.shoplake.<view>`` give DuckDB's names, column
order and types (timestamps back to ``timestamp with time zone``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from jobs.adapters import trino as client
from jobs.adapters.lake.base import Lake
from jobs.adapters.lake.layout import VIEWS, Dataset
from jobs.errors import ShoplakeError, UsageError
from jobs.settings import Settings

log = logging.getLogger(__name__)

_SIMPLE = {
    "VARCHAR": "varchar",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "DOUBLE": "double",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "BLOB": "varbinary",
    # the Hive connector has no zoned timestamps: stored as UTC instants, zoned again in views
    "TIMESTAMP WITH TIME ZONE": "timestamp(6)",
    "TIMESTAMP": "timestamp(6)",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def trino_type(duck_type: str) -> str:
    """The Trino (Hive) column type that reads what DuckDB wrote as ``duck_type``."""
    if duck_type.endswith("[]"):
        return f"array({trino_type(duck_type[:-2])})"
    if m := _DECIMAL.fullmatch(duck_type):
        return f"decimal({m.group(1)},{m.group(2)})"
    if duck_type in _SIMPLE:
        return _SIMPLE[duck_type]
    raise ShoplakeError(f"no Trino type for DuckDB type {duck_type} (extend trino_tables)")


def lake_columns(lake: Lake) -> dict[str, list[tuple[str, str]]]:
    """view name -> [(column, DuckDB type)] in DuckDB's order (empty datasets included)."""
    from jobs.adapters.lake.views import create_views

    con = lake.connect()
    try:
        create_views(con, lake)
        return {v: [(r[0], r[1]) for r in con.execute(f"DESCRIBE {v}").fetchall()] for v in VIEWS}
    finally:
        con.close()


def table_ddl(ds: Dataset, columns: list[tuple[str, str]]) -> str:
    cols = ",\n  ".join(f'"{n}" {trino_type(t)}' for n, t in columns if n != "date")
    return (
        f'CREATE TABLE {_table(ds)} (\n  {cols},\n  "date" date\n) WITH ('
        f"external_location = 's3://{ds.bucket}/{ds.name}', format = 'PARQUET', "
        "partitioned_by = ARRAY['date'])"
    )


def view_ddl(view: str, ds: Dataset, columns: list[tuple[str, str]]) -> str:
    def expr(name: str, duck_type: str) -> str:
        if duck_type == "TIMESTAMP WITH TIME ZONE":
            return f'with_timezone("{name}", \'UTC\') AS "{name}"'
        return f'"{name}"'

    select = ", ".join(expr(n, t) for n, t in columns)
    return (
        f"CREATE OR REPLACE VIEW {client.LAKE_CATALOG}.{client.VIEW_SCHEMA}.{view} "
        f"SECURITY INVOKER AS SELECT {select} FROM {_table(ds)}"
    )


def _table(ds: Dataset) -> str:
    return f'{client.LAKE_CATALOG}."{ds.bucket}"."{ds.name}"'


def _existing(cur: Any) -> dict[tuple[str, str], list[tuple[str, str]]]:
    cur.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM "
        f"{client.LAKE_CATALOG}.information_schema.columns WHERE table_schema IN "
        "('bronze', 'silver', 'gold') ORDER BY table_schema, table_name, ordinal_position"
    )
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, dtype in cur.fetchall():
        found.setdefault((schema, table), []).append((column, dtype))
    return found


def register(settings: Settings, lake: Lake, timeout: float = 120.0) -> dict[str, Any]:
    """Create or fix every table and view, then sync partitions with the lake; idempotent."""
    t0 = time.perf_counter()
    wanted = lake_columns(lake)
    created: list[str] = []
    with client.session(settings, timeout) as cur:
        for schema in ("bronze", "silver", "gold", client.VIEW_SCHEMA):
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS {client.LAKE_CATALOG}."{schema}"')
            cur.fetchall()
        existing = _existing(cur)
        for view, ds in VIEWS.items():
            columns = wanted[view]
            expect = [(n, trino_type(t)) for n, t in columns if n != "date"] + [("date", "date")]
            if existing.get((ds.bucket, ds.name)) != expect:
                # an external table: dropping it forgets metadata, never the Parquet files
                if (ds.bucket, ds.name) in existing:
                    cur.execute(f"DROP TABLE {_table(ds)}")
                    cur.fetchall()
                cur.execute(table_ddl(ds, columns))
                cur.fetchall()
                created.append(f"{ds.bucket}.{ds.name}")
            cur.execute(view_ddl(view, ds, columns))
            cur.fetchall()
        sync_partitions(cur)
    return {"tables": len(VIEWS), "created": created, "seconds": round(time.perf_counter() - t0, 3)}


def sync_partitions(cur: Any) -> None:
    """Make each table's partitions exactly the lake's ``date=`` folders (added and removed)."""
    for ds in VIEWS.values():
        cur.execute(
            f"CALL {client.LAKE_CATALOG}.system.sync_partition_metadata("
            f"'{ds.bucket}', '{ds.name}', 'FULL')"
        )
        cur.fetchall()


def after_medallion(settings: Settings, lake: Lake) -> None:
    """Hook after a medallion step: a running Trino sees the new partitions at once.

    Whether to sync follows Trino itself, not ``SHOPLAKE_PROFILE``: a ``shoplake services
    start --full`` Trino is synced by a lite-profile run too. Best effort: a Trino that is
    down misses nothing, since the service registers the whole lake again whenever it starts.
    """
    if not settings.lake_is_s3:
        return
    if not client.answering(settings):
        if settings.profile == "full":
            log.warning(
                "Trino at %s is not answering: partitions not synced (done when it starts)",
                client.url(settings),
            )
        return
    try:
        try:
            with client.session(settings, timeout=60) as cur:
                sync_partitions(cur)
        except UsageError:  # a table is missing or was dropped: register everything
            register(settings, lake, timeout=60)
    except ShoplakeError as exc:
        log.warning("Trino partitions not synced (done again when Trino starts): %s", exc)
        return
    log.info("Trino at %s is running: partitions synced", client.url(settings))
