"""The lake's datasets as DuckDB views (``shoplake sql``, Trino's table columns).

One view per dataset over its Hive-partitioned Parquet; a dataset with no partition yet gets
an empty table with the schema the rules would produce, so every view always exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import duckdb

from jobs.adapters.lake.base import Lake
from jobs.adapters.lake.layout import VIEWS
from jobs.domain import gold, silver
from jobs.errors import ServiceUnavailable, first_line

_EMPTY_DAY = dt.date(1970, 1, 1)


def _empty_relations(con: duckdb.DuckDBPyConnection) -> dict[str, duckdb.DuckDBPyRelation]:
    """Zero-row relations with each dataset's schema, derived by running the rules on nothing."""
    from jobs.adapters.source_db import ORDERS_ARROW_SCHEMA
    from jobs.domain.bronze import add_bronze_metadata

    bronze = con.from_arrow(
        add_bronze_metadata(ORDERS_ARROW_SCHEMA.empty_table(), "", dt.datetime.now(dt.UTC))
    )
    classified = silver.classify(bronze)
    clean = silver.clean(classified)
    rels = {
        "bronze_orders": bronze,
        "silver_orders": clean,
        "rejected_orders": silver.rejected(classified),
    }
    rels.update({name: fn(clean, _EMPTY_DAY) for name, fn in gold.GOLD_TABLES.items()})
    return rels


def create_views(
    con: duckdb.DuckDBPyConnection, lake: Lake, only: Collection[str] | None = None
) -> None:
    """One view per dataset, with ``date`` from the Hive partition; empty layers still work.

    ``only``: the names of the views a reader needs (each one costs a listing of its dataset).
    """
    empties: dict[str, duckdb.DuckDBPyRelation] | None = None
    for view, dataset in VIEWS.items():
        if only is not None and view not in only:
            continue
        if lake.partitions(dataset):
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM read_parquet("
                f"'{lake.glob_uri(dataset)}', hive_partitioning = true, union_by_name = true)"
            )
            continue
        empties = empties or _empty_relations(con)
        con.register("_empty", empties[view])
        # gold rows already carry `date`; bronze and silver get it from the partition
        date_col = "" if view in gold.GOLD_TABLES else ", CAST(NULL AS DATE) AS date"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT *{date_col} FROM _empty WHERE false"
        )
        con.unregister("_empty")


@contextmanager
def lake_views(
    lake: Lake, only: Collection[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection (UTC) on ``lake`` with the views of ``shoplake sql`` (``only``: just
    those), closed on exit: every reader of the lake's numbers queries these same views.

    The lake unreachable is a ServiceUnavailable, before or while creating the views.
    """
    lake.check()
    con = lake.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        try:
            create_views(con, lake, only)
        except (duckdb.IOException, duckdb.HTTPException) as exc:
            raise ServiceUnavailable(f"lake I/O failed: {first_line(exc)}") from None
        yield con
    finally:
        con.close()
