"""SQL over the lake (``shoplake sql``): DuckDB views over every dataset's Parquet partitions."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from jobs.adapters.lake.views import lake_views
from jobs.bootstrap import Resources
from jobs.errors import ServiceUnavailable, UsageError, first_line
from jobs.settings import Settings

ENGINES = ("duckdb", "trino")  # trino: the full profile's server (lite.services.trino)
FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of a query (``rows`` empty for a statement without result)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


# the first words of Trino's statements that are not queries (its SQL statement list)
_TRINO_CHANGES = frozenset(
    [
        "ALTER",
        "ANALYZE",
        "CALL",
        "COMMENT",
        "COMMIT",
        "CREATE",
        "DEALLOCATE",
        "DELETE",
        "DENY",
        "DROP",
        "EXECUTE",
        "GRANT",
        "INSERT",
        "MERGE",
        "PREPARE",
        "REFRESH",
        "RESET",
        "REVOKE",
        "ROLLBACK",
        "SET",
        "START",
        "TRUNCATE",
        "UPDATE",
        "USE",
    ]
)
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?(\s*\([^)]*\))?\s+", re.IGNORECASE)
WRITE_HINT = "shoplake sql answers queries only; add --write to change the lake or a catalog"


def _strip_comments(query: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL).strip()


def require_read_only(query: str, engine: str) -> None:
    """Refuse anything but a query (COPY, CREATE, INSERT, DROP, ATTACH, SET...): one line.

    DuckDB's own parser says what each statement is; for Trino, whose dialect it does not
    parse, the first keyword of the single statement (``EXPLAIN ANALYZE`` runs its
    statement, so what it explains is checked too).
    """
    if engine == "duckdb":
        try:
            statements = duckdb.connect().extract_statements(query)
        except duckdb.Error as exc:
            raise UsageError(f"SQL: {first_line(exc)}") from None
        for st in statements:
            kind = st.type
            if kind == duckdb.StatementType.EXPLAIN:
                inner = _EXPLAIN.sub("", _strip_comments(st.query), count=1)
                if inner and inner != st.query:
                    require_read_only(inner, engine)
                    continue
            if kind != duckdb.StatementType.SELECT:
                raise UsageError(f"{kind.name} statement refused: {WRITE_HINT}")
        return
    text = _strip_comments(query).rstrip(";").strip()
    inner = _EXPLAIN.sub("", text, count=1)
    first = (inner.split(None, 1) or [""])[0].upper().lstrip("(")
    if ";" in text or first in _TRINO_CHANGES:
        raise UsageError(f"{first or 'empty'} statement refused: {WRITE_HINT}")
    # a word that starts no Trino statement at all (a typo) is Trino's syntax error to report


def run_sql(
    settings: Settings, query: str, engine: str = "duckdb", *, write: bool = False
) -> QueryResult:
    """Run ``query`` over the lake views; bad SQL is a one-line UsageError.

    Read-only unless ``write``: a typo'd ``COPY ... TO 's3://silver/...'`` or ``DROP TABLE``
    must not change the lake through a query tool.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine '{engine}' (choose {', '.join(ENGINES)})")
    if not write:
        require_read_only(query, engine)
    if engine == "trino":
        from jobs.adapters import trino

        return QueryResult(*trino.query(settings, query))
    with lake_views(Resources(settings).lake) as con:
        try:
            rel = con.sql(query)
            table = rel.to_arrow_table() if rel is not None else None
        except (duckdb.IOException, duckdb.HTTPException) as exc:
            raise ServiceUnavailable(f"lake I/O failed: {first_line(exc)}") from None
        except duckdb.Error as exc:
            raise UsageError(f"SQL: {first_line(exc)}") from None
    if table is None:
        return QueryResult([], [])
    return QueryResult(table.column_names, _rows(table))


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = [c.to_pylist() for c in table.columns]
    return list(zip(*cols, strict=True)) if cols else []


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> str:
    # Decimal as a JSON number written exactly (never through float)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return json.dumps(value.isoformat())
    return json.dumps(value, default=str, ensure_ascii=False)


def render(result: QueryResult, fmt: str = "table") -> str:
    """The result as an aligned text table, CSV or a JSON array of objects."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}' (choose {', '.join(FORMATS)})")
    if fmt == "json":
        objs = (
            "{"
            + ", ".join(
                f"{json.dumps(c)}: {_json_value(v)}"
                for c, v in zip(result.columns, row, strict=True)
            )
            + "}"
            for row in result.rows
        )
        return "[" + ",\n ".join(objs) + "]"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(v) for v in row] for row in result.rows)
        return buf.getvalue().rstrip("\n")
    if not result.columns:
        return "OK"
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    line = " | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))
    rule = "-+-".join("-" * w for w in widths)
    body = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    n = len(result.rows)
    return "\n".join([line, rule, *body, f"({n} row{'s' if n != 1 else ''})"])
