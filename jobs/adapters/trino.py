"""Trino (full profile): the client with one-line user errors, and the settings it reads.

Table registration lives in ``jobs.adapters.trino_tables``; the server in ``lite.services.trino``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trino
from trino.exceptions import TrinoExternalError, TrinoQueryError, TrinoUserError

from jobs.adapters.rest import Rest, RestError
from jobs.errors import ServiceUnavailable, UsageError, first_line
from jobs.settings import Settings

USER = "shoplake"
LAKE_CATALOG = "lake"
VIEW_SCHEMA = "shoplake"  # the views `shoplake sql --engine trino` sees, as DuckDB names them


def port(settings: Settings) -> int:
    """Trino's HTTP port (``SHOPLAKE_TRINO_PORT``, 8088) on ``SHOPLAKE_TRINO_HOST``."""
    return settings.trino_port


def heap(settings: Settings) -> str:
    """The JVM heap (``SHOPLAKE_TRINO_HEAP``, 2560M: the node's query memory is 40 % of it)."""
    return settings.trino_heap


def url(settings: Settings) -> str:
    return f"http://{settings.trino_host}:{port(settings)}"


def answering(settings: Settings, timeout: float = 2.0) -> bool:
    """Whether a Trino of this installation (its host and port) is up and past its start."""
    try:
        info = Rest("Trino", url(settings), timeout=timeout).get("/v1/info")
    except (ServiceUnavailable, RestError):
        return False
    return isinstance(info, dict) and info.get("starting") is False


# ---- the client
def connect(settings: Settings, timeout: float = 120.0, schema: str = VIEW_SCHEMA) -> Any:
    """A DB-API connection to the lake catalog; bounded time, no retries."""
    return trino.dbapi.connect(
        host=settings.trino_host,
        port=port(settings),
        user=USER,
        catalog=LAKE_CATALOG,
        schema=schema,
        http_scheme="http",
        request_timeout=timeout,
        max_attempts=1,
        session_properties={"query_max_run_time": f"{int(timeout)}s"},
    )


def _down(settings: Settings) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Trino is not answering at {url(settings)} (start it: shoplake services start --full)"
    )


@contextmanager
def session(settings: Settings, timeout: float = 120.0) -> Iterator[Any]:
    """A cursor whose errors are one line: bad SQL -> UsageError, Trino down -> unavailable."""
    conn = connect(settings, timeout)
    try:
        yield conn.cursor()
    except TrinoUserError as exc:
        raise UsageError(f"SQL: {exc.error_name}: {first_line(exc.message)}") from None
    except (TrinoExternalError, TrinoQueryError) as exc:
        raise ServiceUnavailable(f"Trino: {exc.error_name}: {first_line(exc.message)}") from None
    except trino.exceptions.TrinoConnectionError:
        raise _down(settings) from None
    except OSError as exc:  # refused, reset, timed out (requests wraps them in OSError types)
        if isinstance(exc, ServiceUnavailable | UsageError):
            raise
        raise _down(settings) from None
    finally:
        conn.close()


def query(settings: Settings, sql: str, timeout: float = 120.0) -> tuple[list[str], list[tuple]]:
    """Column names and rows of one statement run in the lake catalog's view schema."""
    with session(settings, timeout) as cur:
        cur.execute(sql)
        rows = [tuple(r) for r in cur.fetchall()]
        columns = [d[0] for d in cur.description or []]
    return columns, rows
