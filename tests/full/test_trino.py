"""Trino over the medallion lake and the source database, against DuckDB as the reference."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import psycopg
import pytest

from jobs import medallion, seed, sql
from jobs.adapters import trino
from jobs.adapters.lake.layout import GOLD_DATASETS
from jobs.settings import Settings
from tests.conftest import empty_lake
from tests.e2e.test_cli import env_for, error_line, shoplake

pytestmark = pytest.mark.integration
END = dt.date(2024, 5, 10)
DAYS = [END - dt.timedelta(days=i) for i in range(4, 0, -1)]  # END itself: the hook test
KEYS = {
    "daily_summary": "date",
    "category_performance": "date, category",
    "regional_performance": "date, region",
}


@pytest.fixture(scope="module")
def lake(trino_settings: Settings) -> Settings:
    """Five seeded days; four of them through the medallion (full profile: the hook runs)."""
    empty_lake(trino_settings)
    seed.seed(trino_settings, days=5, orders_per_day=150, seed=11, end_date=END, reset=True)
    medallion.backfill(trino_settings, DAYS[0], DAYS[-1])
    return trino_settings


def both(settings: Settings, query: str) -> tuple[sql.QueryResult, sql.QueryResult]:
    return sql.run_sql(settings, query), sql.run_sql(settings, query, engine="trino")


@pytest.mark.parametrize("table", sorted(GOLD_DATASETS))
def test_gold_table_equals_duckdb(lake: Settings, table: str) -> None:
    query = f"SELECT * FROM {table} WHERE date < DATE '{END}' ORDER BY {KEYS[table]}"
    duck, tri = both(lake, query)
    assert tri.columns == duck.columns
    assert {r[0] for r in tri.rows} == set(DAYS)
    assert tri.rows == duck.rows


def test_silver_and_rejected_match_with_timestamps(lake: Settings) -> None:
    for view in ("bronze_orders", "silver_orders", "rejected_orders"):
        duck, tri = both(
            lake,
            f"SELECT date, count(*), sum(total), min(order_date), "
            f"max(_ingested_at) FROM {view} GROUP BY date ORDER BY date",
        )
        assert tri.rows == duck.rows, view
        # every day has bronze and silver rows (a day may have no rejected row)
        assert len(tri.rows) == len(DAYS) or view == "rejected_orders", view


def _source_counts(settings: Settings) -> dict[dt.date, int]:
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(
            "SELECT (order_date AT TIME ZONE 'UTC')::date, count(*) FROM orders GROUP BY 1"
        ).fetchall()
    return dict(rows)


def test_join_lake_gold_with_postgres_source(lake: Settings) -> None:
    result = sql.run_sql(
        lake,
        """
        SELECT g.date, g.total_orders, s.orders, coalesce(r.rejected, 0)
        FROM daily_summary g
        JOIN (SELECT CAST(order_date AS date) AS date, count(*) AS orders
              FROM postgres_source.public.orders GROUP BY 1) s ON s.date = g.date
        LEFT JOIN (SELECT date, count(*) AS rejected FROM rejected_orders GROUP BY 1) r
          ON r.date = g.date
        ORDER BY g.date""",
        engine="trino",
    )
    source = _source_counts(lake)
    silver = dict(sql.run_sql(lake, "SELECT date, count(*) FROM silver_orders GROUP BY 1").rows)
    assert [r[0] for r in result.rows] == DAYS
    for day, total_orders, orders, rejected in result.rows:
        assert orders == source[day]
        assert total_orders == silver[day]
        assert total_orders + rejected == orders  # nothing silently dropped, seen from Trino


def test_the_source_catalog_cannot_write(lake: Settings) -> None:
    """Trino reads the shop's database as a read-only role, never as the superuser: even
    with ``--write`` a statement through it cannot change a source table."""
    from jobs.errors import ShoplakeError

    before = _source_counts(lake)
    with pytest.raises(ShoplakeError) as err:
        sql.run_sql(
            lake,
            "DELETE FROM postgres_source.public.orders WHERE order_id IS NOT NULL",
            engine="trino",
            write=True,
        )
    assert "read-only" in str(err.value) or "permission denied" in str(err.value)
    assert _source_counts(lake) == before
    user = trino.query(
        lake, "SELECT * FROM TABLE(postgres_source.system.query(query => 'SELECT current_user'))"
    )[1]
    assert user[0][0].startswith("shoplake_ro_")


def test_shoplake_sql_refuses_writes_without_the_flag(lake: Settings) -> None:
    from jobs.errors import UsageError

    for engine in ("duckdb", "trino"):
        with pytest.raises(UsageError, match="--write"):
            sql.run_sql(lake, "DROP TABLE lake.silver.orders", engine=engine)


def _trino_days(settings: Settings) -> set[Any]:
    return {r[0] for r in trino.query(settings, "SELECT date FROM daily_summary")[1]}


def test_new_partitions_visible_after_a_medallion_run(
    lake: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert END not in _trino_days(lake)
    # without SHOPLAKE_PROFILE=full: the sync follows the running Trino, not the setting
    lite = lake.model_copy(update={"profile": "lite"})
    with caplog.at_level("INFO", logger="jobs.adapters.trino_tables"):
        medallion.run_date(lite, END)  # no registration step of our own: the job's hook does it
    assert END in _trino_days(lake)
    assert f"Trino at {trino.url(lake)} is running: partitions synced" in caplog.text
    assert (
        trino.query(lake, f"SELECT count(*) FROM silver_orders WHERE date = DATE '{END}'")[1]
        == sql.run_sql(lake, f"SELECT count(*) FROM silver_orders WHERE date = DATE '{END}'").rows
    )


def _trino_env(settings: Settings, port: int) -> dict[str, str]:
    return {**env_for(settings), "SHOPLAKE_TRINO_PORT": str(port), "SHOPLAKE_PROFILE": "full"}


def test_cli_bad_sql_is_one_line(trino_settings: Settings) -> None:
    proc = shoplake(
        "sql",
        "--engine",
        "trino",
        "SELEC 1",
        env=_trino_env(trino_settings, trino.port(trino_settings)),
    )
    assert proc.returncode == 2
    assert error_line(proc).startswith("error: SQL: SYNTAX_ERROR: line 1:1: mismatched input")
    proc = shoplake(
        "sql",
        "--engine",
        "trino",
        "SELECT * FROM no_such_view",
        env=_trino_env(trino_settings, trino.port(trino_settings)),
    )
    assert proc.returncode == 2
    assert error_line(proc) == (
        "error: SQL: TABLE_NOT_FOUND: line 1:15: Table 'lake.shoplake.no_such_view' does not exist"
    )


def test_cli_trino_down_is_one_line(trino_settings: Settings) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = shoplake("sql", "--engine", "trino", "SELECT 1", env=_trino_env(trino_settings, port))
    assert proc.returncode == 3
    assert error_line(proc) == (
        f"error: Trino is not answering at http://127.0.0.1:{port} "
        "(start it: shoplake services start --full)"
    )


def test_cli_query_prints_rows(lake: Settings) -> None:
    proc = shoplake(
        "sql",
        "--engine",
        "trino",
        "--format",
        "csv",
        "SELECT date, total_orders FROM daily_summary ORDER BY date LIMIT 1",
        env=_trino_env(lake, trino.port(lake)),
    )
    assert proc.returncode == 0, proc.stderr
    header, first = proc.stdout.strip().splitlines()
    assert header == "date,total_orders"
    assert first.startswith(f"{DAYS[0]},")
