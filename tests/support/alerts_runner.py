"""Runs the alerts use case in a thread against a test database, with in-memory sinks."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from jobs import alert_engines as engines
from jobs.adapters import source_db
from jobs.alerts.sinks import Sink
from jobs.alerts.sinks.console import ConsoleSink
from jobs.settings import Settings


class MemorySink(ConsoleSink):
    """The console sink writing JSON lines to memory; ``records`` parses what it delivered."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), "json")

    def records(self) -> list[dict[str, Any]]:
        assert isinstance(self.stream, io.StringIO)
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]


def prepare_source(settings: Settings) -> None:
    """The SPEC orders table, created by the source adapter."""
    with psycopg.connect(settings.dsn) as conn:
        source_db.ensure_schema(conn)


@contextmanager
def in_background(
    run: Callable[[threading.Event], None],
    started: Callable[[list[BaseException]], None] | None = None,
) -> Iterator[threading.Event]:
    """Run a long-running use case (``run(stop)``) in a thread; stop it on exit.

    ``started(errors)`` waits until it is ready. An error the use case raised is raised
    again on exit, also when the test body failed: it is then the real cause.
    """
    stop, errors = threading.Event(), []

    def target() -> None:
        try:
            run(stop)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    if started is not None:
        started(errors)
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
        if errors:
            raise errors[0]
    assert not thread.is_alive(), "the background service did not stop"


@contextmanager
def running_alerts(settings: Settings, sinks: list[Sink], **kw: Any) -> Iterator[threading.Event]:
    """Start the lite alerts service once its slot streams; stop it on exit."""

    def started(errors: list[BaseException]) -> None:
        wait_for(lambda: slot_active(settings) or bool(errors), 20, "the slot to become active")

    with in_background(
        lambda stop: engines.run_python(settings, stop, sinks, **kw), started
    ) as stop:
        yield stop


# a slot being created is "active" too (its creator holds it): only a walsender means streaming
STREAMING_SQL = (
    "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid"
    " WHERE s.database = current_database() AND a.backend_type = 'walsender'"
)


def slot_active(settings: Settings) -> bool:
    """Is the alerts service streaming from this database's slot (so new commits are seen)?"""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(STREAMING_SQL).fetchone()
    return bool(row and row[0])


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy, or fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def insert_orders(conn: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows (SPEC columns given as a dict) in the caller's transaction."""
    cols = ["order_id", "customer_id", "product_name", "price", "quantity", "total", "status"]
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
            [[r.get(c) for c in cols] for r in rows],
        )
