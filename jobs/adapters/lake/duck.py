"""DuckDB's httpfs extension, loaded offline from the ``duckdb-extension-httpfs`` wheel."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import duckdb

from jobs.errors import ServiceUnavailable


@lru_cache(maxsize=1)
def httpfs_path() -> Path:
    """The extension file shipped in the wheel for this DuckDB version."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise ServiceUnavailable(
            "DuckDB's httpfs extension is not installed (pip install duckdb-extension-httpfs)"
        ) from None
    version = duckdb.__version__
    path = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{version}"
        / "httpfs.duckdb_extension"
    )
    if not path.is_file():
        raise ServiceUnavailable(
            f"duckdb-extension-httpfs has no build for DuckDB {version}: pin the same version"
        )
    return path


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD httpfs straight from the wheel's file: no download, nothing written to $HOME."""
    con.execute(f"LOAD '{sql_literal(str(httpfs_path()))}'")


def sql_literal(value: str) -> str:
    """Escape a value for a single-quoted SQL string literal."""
    return value.replace("'", "''")
