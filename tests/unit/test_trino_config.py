"""Pure parts of the Trino integration: type mapping, DDL, Maven coordinates, templates."""

from __future__ import annotations

import string

import pytest

from jobs.adapters.lake.layout import SILVER_ORDERS
from jobs.adapters.trino_tables import table_ddl, trino_type, view_ddl
from jobs.errors import ShoplakeError
from lite.services.maven import Artifact
from lite.services.trino import CONFIG_DIR, _query_memory


@pytest.mark.parametrize(
    ("duck", "trino"),
    [
        ("VARCHAR", "varchar"),
        ("DECIMAL(12,2)", "decimal(12,2)"),
        ("DECIMAL(38, 2)", "decimal(38,2)"),
        ("TIMESTAMP WITH TIME ZONE", "timestamp(6)"),
        ("VARCHAR[]", "array(varchar)"),
        ("BIGINT[][]", "array(array(bigint))"),
        ("DATE", "date"),
        ("BOOLEAN", "boolean"),
    ],
)
def test_duckdb_types_map_to_trino(duck: str, trino: str) -> None:
    assert trino_type(duck) == trino


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ShoplakeError, match="UNION"):
        trino_type("UNION(a INTEGER)")


def test_table_is_external_partitioned_by_date_and_view_rezones_timestamps() -> None:
    cols = [("order_id", "VARCHAR"), ("order_date", "TIMESTAMP WITH TIME ZONE"), ("date", "DATE")]
    ddl = table_ddl(SILVER_ORDERS, cols)
    assert "external_location = 's3://silver/orders'" in ddl
    assert "partitioned_by = ARRAY['date']" in ddl
    assert ddl.count('"date"') == 1  # the partition column comes last, once
    view = view_ddl("silver_orders", SILVER_ORDERS, cols)
    assert 'with_timezone("order_date", \'UTC\') AS "order_date"' in view
    assert view.startswith("CREATE OR REPLACE VIEW lake.shoplake.silver_orders ")


def test_maven_coordinates() -> None:
    art = Artifact.parse("io.trino:trino-server:476:tar.gz")
    assert art.filename == "trino-server-476.tar.gz"
    plugin = Artifact.parse("io.debezium:dbz:3.6.1:tar.gz:plugin")
    assert plugin.filename == "dbz-3.6.1-plugin.tar.gz"
    assert Artifact.parse("g:a:1").coordinate == "g:a:1:jar"
    with pytest.raises(ValueError, match="coordinate"):
        Artifact.parse("g:a")


def test_config_templates_have_no_secrets_and_known_placeholders() -> None:
    known = {
        "bind_host",
        "port",
        "heap",
        "query_memory",
        "data_dir",
        "metastore_dir",
        "plugin_dir",
        "s3_endpoint",
        "s3_region",
        "s3_access_key",
        "s3_secret_key",
        "pg_host",
        "pg_port",
        "pg_database",
        "pg_user",
        "pg_password",
    }
    files = [p for p in CONFIG_DIR.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {
        "config.properties",
        "jvm.config",
        "node.properties",
        "lake.properties",
        "postgres_source.properties",
    }
    for path in files:
        text = path.read_text()
        assert "shoplake-dev-only" not in text, path
        used = {
            m.group("named") or m.group("braced")
            for m in string.Template.pattern.finditer(text)
            if not m.group("escaped")
        }
        assert used <= known, (path, used - known)


def test_query_memory_is_a_share_of_the_heap() -> None:
    assert _query_memory("2560M") == "1024MB"
    assert _query_memory("3G") == "1228MB"
