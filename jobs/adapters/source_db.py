"""The source PostgreSQL: connection, schema, COPY bulk load and the one-day extract."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jobs.domain.generator import CUSTOMERS_SCHEMA, ORDERS_SCHEMA, PRODUCTS_SCHEMA, day_window
from jobs.errors import ServiceUnavailable

ORDERS_ARROW_SCHEMA = ORDERS_SCHEMA
TABLE_SCHEMAS = {
    "customers": CUSTOMERS_SCHEMA,
    "products": PRODUCTS_SCHEMA,
    "orders": ORDERS_SCHEMA,
}
ORDER_COLUMNS = tuple(ORDERS_SCHEMA.names)
CONNECT_TIMEOUT_S = 5
COPY_CHUNK_BYTES = 8 << 20

# No foreign keys on orders: unknown products and missing customers are deliberate defects.
SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id       text PRIMARY KEY,
    customer_name     text,
    email             text UNIQUE,
    phone             text,
    registration_date date,
    customer_segment  text,
    lifetime_value    numeric(12,2),
    city              text,
    country           text,
    created_at        timestamptz DEFAULT now()
);
CREATE TABLE IF NOT EXISTS products (
    product_id     text PRIMARY KEY,
    product_name   text,
    category       text,
    base_price     numeric(12,2),
    stock_quantity integer,
    created_at     timestamptz DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
    order_id       text PRIMARY KEY,
    order_date     timestamptz,
    customer_id    text,
    product_id     text,
    category       text,
    product_name   text,
    price          numeric(12,2),
    quantity       integer,
    total          numeric(12,2),
    status         text,
    payment_method text,
    region         text,
    created_at     timestamptz DEFAULT now(),
    updated_at     timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_order_date_idx ON orders (order_date);
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
CREATE INDEX IF NOT EXISTS orders_updated_at_idx ON orders (updated_at);
"""
ORDER_INDEXES = ("orders_order_date_idx", "orders_customer_id_idx", "orders_updated_at_idx")


def describe_dsn(dsn: str) -> str:
    """``host:port/db`` of a DSN, never its password (for messages)."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    host = info.get("host") or info.get("hostaddr") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def _reason(exc: BaseException, dsn: str) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(exc).__name__
    password = _password(dsn)
    return reason.replace(password, "***") if password else reason


def failed(exc: BaseException, dsn: str) -> ServiceUnavailable:
    """A database error as one clean line (``host:port/db``, never the password)."""
    return ServiceUnavailable(f"PostgreSQL at {describe_dsn(dsn)} failed: {_reason(exc, dsn)}")


def _password(dsn: str) -> str | None:
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return None
    return str(password) if password else None


def _with_timeout(dsn: str) -> str:
    """The DSN with a connect timeout, so an unroutable host fails fast."""
    if "connect_timeout" in dsn:
        return dsn
    try:
        return make_conninfo(dsn, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError:
        return dsn


def connect(dsn: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection (UTC session), or raise ServiceUnavailable with one clean line."""
    try:
        conn = psycopg.connect(_with_timeout(dsn), autocommit=autocommit)
    except (psycopg.Error, ValueError) as exc:
        raise ServiceUnavailable(
            f"PostgreSQL at {describe_dsn(dsn)} is not reachable: {_reason(exc, dsn)}"
        ) from None
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


@contextmanager
def session(dsn: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection whose database errors surface as one-line ServiceUnavailable."""
    with connect(dsn, autocommit=autocommit) as conn:
        try:
            yield conn
        except psycopg.Error as exc:
            raise failed(exc, dsn) from exc


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the three tables and the order indexes if missing (idempotent)."""
    # an advisory lock keeps two concurrent seeds from racing on CREATE ... IF NOT EXISTS
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('shoplake.schema'))")
    conn.execute(SCHEMA_DDL)
    conn.commit()


def nonempty(conn: psycopg.Connection) -> dict[str, bool]:
    """Whether each source table has at least one row (cheap, unlike count(*))."""
    out = {}
    for name in TABLE_SCHEMAS:
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
        out[name] = conn.execute(query).fetchone() == (True,)
    return out


def truncate_all(conn: psycopg.Connection) -> None:
    """Empty the three tables."""
    conn.execute("TRUNCATE orders, customers, products")
    conn.commit()


@dataclass(frozen=True)
class EncodedRows:
    """Rows already encoded as PostgreSQL CSV, ready for COPY (encode off the load thread)."""

    columns: tuple[str, ...]
    num_rows: int
    data: pa.Buffer


def encode_csv(table: pa.Table) -> EncodedRows:
    """The table as CSV that PostgreSQL's COPY reads back exactly.

    pyarrow quotes every string, so '' stays an empty string and a bare empty field is
    NULL. Timestamps are written naive (UTC wall time): formatting them with their zone
    is 20x slower, and our sessions run with TimeZone UTC.
    """
    cols = []
    for field, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            col = col.cast(pa.timestamp(field.type.unit))
        cols.append(col)
    sink = pa.BufferOutputStream()
    plain = pa.Table.from_arrays(cols, names=table.schema.names)
    pacsv.write_csv(plain, sink, pacsv.WriteOptions(include_header=False, batch_size=65_536))
    return EncodedRows(tuple(table.schema.names), table.num_rows, sink.getvalue())


def copy_in(
    conn: psycopg.Connection,
    name: str,
    rows: pa.Table | EncodedRows,
    *,
    skip_existing: bool,
    freeze: bool = False,
) -> int:
    """COPY ``rows`` into table ``name`` and return the rows added (no commit).

    ``skip_existing`` stages the rows in a temporary table and inserts them with ON
    CONFLICT DO NOTHING, so rows whose keys exist already are kept as they are; otherwise
    the rows go straight in (the fast path for empty tables). ``freeze`` writes them
    frozen, allowed only when the table was created or truncated in this transaction.
    """
    enc = rows if isinstance(rows, EncodedRows) else encode_csv(rows)
    if enc.num_rows == 0:
        return 0
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in enc.columns)
    target = sql.Identifier(name)
    if skip_existing:
        target = sql.Identifier(f"_stage_{name}")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
                target, sql.Identifier(name)
            )
        )
    options = sql.SQL("FORMAT csv, FREEZE" if freeze and not skip_existing else "FORMAT csv")
    view = memoryview(enc.data)
    with conn.cursor() as cur:
        statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(target, cols, options)
        with cur.copy(statement) as cp:
            for start in range(0, len(view), COPY_CHUNK_BYTES):
                cp.write(view[start : start + COPY_CHUNK_BYTES])
        if not skip_existing:
            return enc.num_rows
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier(name), cols, cols, target
            )
        )
        added = cur.rowcount
        cur.execute(sql.SQL("DROP TABLE {}").format(target))
        return added


@contextmanager
def orders_bulk_mode(conn: psycopg.Connection) -> Iterator[None]:
    """Load an empty ``orders`` without index upkeep, then build the indexes once.

    Everything runs in the caller's one transaction: an interrupted load rolls back
    whole, indexes included. Maintaining four B-trees row by row made a 10 M-row load
    about 2x slower than building them afterwards. Takes an exclusive lock on ``orders``.
    """
    conn.execute("TRUNCATE orders")  # same transaction: lets COPY ... FREEZE skip hint-bit work
    conn.execute("ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_pkey")
    for index in ORDER_INDEXES:
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
    yield
    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    conn.execute("ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (order_id)")
    conn.execute(SCHEMA_DDL)


# ------------------------------------------------------------------ extract
EXTRACT_ROUTES = ("auto", "duckdb", "copy-csv")


_TIMESTAMPS = ("order_date", "created_at", "updated_at")
_NUMERICS = ("price", "total")
# Where a row without a usable order_date lands: the day of its last change, else of its
# creation. A row with none of the three (all NULL or infinite) cannot be placed on a day:
# ``unplaceable_orders`` counts them and the extract warns (see README "Data quality").
_PLACED_AT = (
    "coalesce("
    + ", ".join(
        f"CASE WHEN isfinite({c}) THEN {c} END" for c in ("order_date", "updated_at", "created_at")
    )
    + ")"
)
# equalities rather than isfinite(): the order_date index serves both terms
_UNDATED = "(order_date IS NULL OR order_date IN ('infinity', '-infinity'))"


def _extract_column(col: str) -> str:
    """A column as it can travel through Arrow: PostgreSQL's +-infinity timestamps and numeric
    NaN have no Arrow value, so they come through as NULL (silver then quarantines the row:
    ``missing_order_date``, ``missing_price``) instead of failing the whole day."""
    if col in _TIMESTAMPS:
        return f"CASE WHEN isfinite({col}) THEN {col} END AS {col}"
    if col in _NUMERICS:
        return f"CASE WHEN {col} = 'NaN' THEN NULL ELSE {col} END AS {col}"
    return col


def _day_condition(day: dt.date, tz: str) -> str:
    start, end = day_window(day, tz)
    lo, hi = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    return (
        f"((order_date >= {lo} AND order_date < {hi}) "
        f"OR ({_UNDATED} AND {_PLACED_AT} >= {lo} AND {_PLACED_AT} < {hi}))"
    )


def orders_day_sql(day: dt.date, tz: str = "UTC") -> str:
    """``SELECT`` of one local day of orders (a range on the order_date index).

    Every row lands on exactly one day: its ``order_date``'s, or, when that is NULL or
    infinite, the day of its ``updated_at`` (else ``created_at``). The bounds are inlined
    because COPY takes no parameters; they are formatted from datetimes, never from user text.
    """
    cols = ", ".join(_extract_column(c) for c in ORDER_COLUMNS)
    return f"SELECT {cols} FROM orders WHERE {_day_condition(day, tz)}"


def day_changes_sql(day: dt.date, tz: str, since_xid: int) -> str:
    """One scan of the day: its rows whose version was written by a transaction numbered at
    or after ``since_xid`` (32-bit), then one row of NULLs carrying the day's row count in
    the extra last column."""
    cols = ", ".join(_extract_column(c) for c in ORDER_COLUMNS)
    nulls = ", ".join("NULL" for _ in ORDER_COLUMNS)
    return (
        "WITH s AS (SELECT count(*) AS n, array_agg(o) FILTER "
        f"(WHERE (o.xmin::text::bigint) >= {int(since_xid)}) AS changed "
        f"FROM orders AS o WHERE {_day_condition(day, tz)}) "
        f"SELECT {cols}, NULL::bigint FROM s, unnest(s.changed) AS orders "
        f"UNION ALL SELECT {nulls}, n FROM s"
    )


# ---- incremental reads of one day: what changed since a snapshot ----
XID_EPOCH = 1 << 32  # xid8 = epoch * 2**32 + the 32-bit xid a row's xmin holds


@dataclass(frozen=True)
class DayChanges:
    """The rows of a day written since a horizon, read in one snapshot.

    ``rows``: every row version of the day created by a transaction at or after ``since``
    (some already seen: re-reading is harmless, missing is not). ``total``: the day's row
    count in the same snapshot, so that a caller can tell a deleted row (or one moved to
    another day) by its count. ``horizon``: that snapshot's xmin, the next ``since``.
    """

    rows: pa.Table
    total: int
    horizon: int


def snapshot_horizon(dsn: str) -> int:
    """The xmin (xid8) of a snapshot taken now: every row version a later read cannot see
    yet is written by a transaction numbered at or after it."""
    with session(dsn) as conn:
        row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
        conn.rollback()
    assert row is not None
    return int(row[0])


def read_day_changes(
    conn: psycopg.Connection, day: dt.date, tz: str, since: int
) -> DayChanges | None:
    """The day's rows written at or after ``since`` (a ``horizon``), their count, the new
    horizon; None when the 32-bit transaction counter wrapped in between (read it all).

    A row version's ``xmin`` is the transaction that wrote it. A transaction that was
    running when the snapshot of ``since`` was taken, or started later, has an id at or
    above that snapshot's xmin, so filtering on ``xmin >= since`` finds every version the
    previous read could not see. ``conn`` is an autocommit connection, kept between runs
    (no login per run).
    """
    assert conn.autocommit, "read_day_changes runs its own transaction"
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        # the first query takes the snapshot: horizon, count and rows all come from it
        row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
        assert row is not None
        horizon = int(row[0])
        if horizon // XID_EPOCH != since // XID_EPOCH:
            return None
        buf = io.BytesIO()
        for block in copy_out(conn, day_changes_sql(day, tz, since % XID_EPOCH)):
            buf.write(block)
    table = pacsv.read_csv(pa.BufferReader(buf.getbuffer()), _READ_N, _PARSE, _CONVERT_N)
    total = pc.drop_null(table[_DAY_COUNT])
    assert len(total) == 1, "the day's count row is missing"
    changed = table.filter(pc.is_null(table[_DAY_COUNT])).drop_columns([_DAY_COUNT])
    return DayChanges(changed.cast(ORDERS_SCHEMA), int(total[0].as_py()), horizon)


def unplaceable_orders(conn: psycopg.Connection, limit: int = 5) -> tuple[int, list[str]]:
    """How many orders have no usable order_date, updated_at nor created_at, and a few ids."""
    rows = conn.execute(
        f"SELECT order_id, count(*) OVER () FROM orders WHERE {_UNDATED} AND {_PLACED_AT} IS NULL "
        "ORDER BY order_id LIMIT %s",
        (limit,),
    ).fetchall()
    return (int(rows[0][1]) if rows else 0), [str(r[0]) for r in rows]


def read_orders_for_day(
    dsn: str, day: dt.date, tz: str = "UTC", *, route: str = "auto"
) -> pa.Table:
    """Every order with ``order_date`` in ``[day 00:00, day+1 00:00)`` of ``tz``, as Arrow.

    ``auto`` takes DuckDB's postgres extension (binary COPY decoded in C++, the fastest
    route measured in benchmarks/bench_extract.py) when its wheel is installed, else
    ``copy-csv``: psycopg ``COPY ... TO STDOUT (FORMAT csv)`` parsed by pyarrow. Both give
    ORDERS_ARROW_SCHEMA with exact decimals and UTC timestamps.
    """
    if route not in EXTRACT_ROUTES:
        raise ValueError(f"unknown extract route {route!r} (choose {', '.join(EXTRACT_ROUTES)})")
    query = orders_day_sql(day, tz)
    if route == "duckdb" or (route == "auto" and postgres_extension_path() is not None):
        return _read_duckdb(dsn, query)
    return _read_copy_csv(dsn, query)


def copy_out(conn: psycopg.Connection, query: str, fmt: str = "csv") -> Iterator[memoryview]:
    """Stream the raw bytes of ``COPY (query) TO STDOUT`` in the given format."""
    statement = f"COPY ({query}) TO STDOUT (FORMAT {fmt})"
    with conn.cursor() as cur, cur.copy(statement) as cp:
        for block in cp:
            yield memoryview(block)


_READ = pacsv.ReadOptions(column_names=list(ORDER_COLUMNS), block_size=16 << 20)
# text columns may hold newlines (PostgreSQL quotes them): correctness over parse speed
_PARSE = pacsv.ParseOptions(newlines_in_values=True)
_CONVERT = pacsv.ConvertOptions(
    column_types=ORDERS_SCHEMA,
    # PostgreSQL's CSV writes NULL as a bare empty field and '' as "": only the former is null
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
    null_values=[""],
)


# day_changes_sql's output: the orders columns and the day's count in the last one
_DAY_COUNT = "_day_count"
_READ_N = pacsv.ReadOptions(column_names=[*ORDER_COLUMNS, _DAY_COUNT], block_size=16 << 20)
_CONVERT_N = pacsv.ConvertOptions(
    column_types=pa.schema([*ORDERS_SCHEMA, pa.field(_DAY_COUNT, pa.int64())]),
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
    null_values=[""],
)


def orders_from_csv(data: bytes | memoryview | pa.Buffer) -> pa.Table:
    """Parse PostgreSQL CSV of the orders columns into ORDERS_ARROW_SCHEMA."""
    if not len(data):
        return ORDERS_SCHEMA.empty_table()
    table = pacsv.read_csv(pa.BufferReader(data), _READ, _PARSE, _CONVERT)
    return table.cast(ORDERS_SCHEMA)


def _read_copy_csv(dsn: str, query: str) -> pa.Table:
    with session(dsn) as conn:
        buf = io.BytesIO()
        for block in copy_out(conn, query):
            buf.write(block)
        conn.rollback()
    return orders_from_csv(buf.getbuffer())


@lru_cache(maxsize=1)
def postgres_extension_path() -> Path | None:
    """DuckDB's postgres extension file from the ``duckdb-extension-postgres-scanner`` wheel."""
    try:
        import duckdb
        import duckdb_extension_postgres_scanner as wheel
    except ImportError:
        return None
    path = (
        Path(wheel.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "postgres_scanner.duckdb_extension"
    )
    return path if path.is_file() else None


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@lru_cache(maxsize=1)
def _duckdb_with_postgres() -> Any:
    """One in-memory DuckDB per process with the extension loaded (LOAD costs ~0.3 s)."""
    import duckdb

    path = postgres_extension_path()
    if path is None:
        raise ServiceUnavailable(
            "DuckDB's postgres extension is missing: install duckdb-extension-postgres-scanner"
            f"=={duckdb.__version__}"
        )
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    # LOAD from the wheel's file: no download, nothing written to $HOME
    con.execute(f"LOAD {_quote(str(path))}")
    return con


def _read_duckdb(dsn: str, query: str) -> pa.Table:
    import duckdb

    # a cursor per call (thread-safe) and a unique alias, detached afterwards
    cur = _duckdb_with_postgres().cursor()
    alias = f"src_{uuid.uuid4().hex}"
    try:
        cur.execute(f"ATTACH {_quote(_with_timeout(dsn))} AS {alias} (TYPE postgres, READ_ONLY)")
        try:
            result = cur.execute(f"SELECT * FROM postgres_query('{alias}', {_quote(query)})")
            table = result.to_arrow_table()
        finally:
            cur.execute(f"DETACH {alias}")
    except duckdb.Error as exc:
        # DuckDB repeats the connection string before libpq's reason: keep the reason only
        reason = _reason(exc, dsn).split('": ', 1)[-1]
        raise ServiceUnavailable(f"PostgreSQL at {describe_dsn(dsn)} failed: {reason}") from None
    finally:
        cur.close()
    return table.cast(ORDERS_SCHEMA)


def ensure_reader(dsn: str, role: str, password: str) -> None:
    """A login role that can read every table and write none (for Trino's source catalog).

    ``pg_read_all_data`` (PostgreSQL 14+) grants SELECT everywhere; read-only transactions by
    default make a write fail even where a grant would allow it. Needs CREATEROLE.
    """
    with session(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(role)
            )
        )
