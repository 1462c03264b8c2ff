"""``shoplake sql`` answers queries only unless --write: every other statement is one line."""

from __future__ import annotations

import pytest

from jobs.errors import UsageError
from jobs.sql import require_read_only

QUERIES = [
    "SELECT 1",
    "  -- a comment\n with a AS (SELECT 1) SELECT * FROM a",
    "EXPLAIN SELECT * FROM silver_orders",
    "DESCRIBE silver_orders",
    "SHOW TABLES",
    "VALUES (1)",
]
WRITES = [
    "COPY (SELECT 1) TO 's3://silver/orders/x.parquet'",
    "CREATE TABLE t AS SELECT 1",
    "DROP TABLE lake.silver.orders",
    "INSERT INTO t VALUES (1)",
    "SELECT 1; DROP TABLE t",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "/* hidden */ DELETE FROM t",
    "ATTACH 'x.db'",
    "SET s3_endpoint = 'evil'",
    "CALL lake.system.sync_partition_metadata('silver', 'orders', 'FULL')",
]


@pytest.mark.parametrize("engine", ["duckdb", "trino"])
@pytest.mark.parametrize("query", QUERIES)
def test_queries_pass(query: str, engine: str) -> None:
    require_read_only(query, engine)


@pytest.mark.parametrize("engine", ["duckdb", "trino"])
@pytest.mark.parametrize("query", WRITES)
def test_writes_need_the_flag(query: str, engine: str) -> None:
    if engine == "duckdb" and query.startswith("CALL lake."):
        pytest.skip("Trino syntax")
    if engine == "trino" and query.startswith(("COPY", "ATTACH")):
        pytest.skip("no such Trino statement: Trino answers with a syntax error")
    with pytest.raises(UsageError, match="--write") as err:
        require_read_only(query, engine)
    assert "\n" not in str(err.value)


def test_a_typo_is_left_to_trino_to_report() -> None:
    require_read_only("SELEC 1", "trino")  # Trino answers with its syntax error
    with pytest.raises(UsageError, match="SQL"):
        require_read_only("SELEC 1", "duckdb")  # DuckDB's parser already did
