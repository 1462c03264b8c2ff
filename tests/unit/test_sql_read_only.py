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
    "CREATE TABLE t AS SELECT 1",
    "DROP TABLE lake.silver.orders",
    "INSERT INTO t VALUES (1)",
    "SELECT 1; DROP TABLE t",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "/* hidden */ DELETE FROM t",
    "SET s3_endpoint = 'evil'",
]
# statements one engine has and the other does not (there they are syntax errors)
DUCKDB_WRITES = ["COPY (SELECT 1) TO 's3://silver/orders/x.parquet'", "ATTACH 'x.db'"]
TRINO_WRITES = ["CALL lake.system.sync_partition_metadata('silver', 'orders', 'FULL')"]
CASES = [
    *((q, e) for q in WRITES for e in ("duckdb", "trino")),
    *((q, "duckdb") for q in DUCKDB_WRITES),
    *((q, "trino") for q in TRINO_WRITES),
]


@pytest.mark.parametrize("engine", ["duckdb", "trino"])
@pytest.mark.parametrize("query", QUERIES)
def test_queries_pass(query: str, engine: str) -> None:
    require_read_only(query, engine)


@pytest.mark.parametrize(("query", "engine"), CASES)
def test_writes_need_the_flag(query: str, engine: str) -> None:
    with pytest.raises(UsageError, match="--write") as err:
        require_read_only(query, engine)
    assert "\n" not in str(err.value)


def test_a_typo_is_left_to_trino_to_report() -> None:
    require_read_only("SELEC 1", "trino")  # Trino answers with its syntax error
    with pytest.raises(UsageError, match="SQL"):
        require_read_only("SELEC 1", "duckdb")  # DuckDB's parser already did
