"""The Debezium PostgreSQL connector of the full profile: its config, registration and removal.

``register`` is what makes CDC run without a manual ``curl``: it PUTs the connector's config
to Kafka Connect's REST API (idempotent) and waits until the connector and its task run.
``unregister`` removes it *and* its replication slot. ``shoplake up --full`` does not: it keeps
both across a stop so that no change is lost (the WAL a slot pins is bounded by
``max_slot_wal_keep_size``; ``shoplake status`` shows it).

Choices in the config (``config/kafka/debezium-postgres.json``):
- ``pgoutput``: built into PostgreSQL, no server plugin to install;
- ``decimal.handling.mode=string``: NUMERIC as exact strings ("10000.01"), not base64 bytes;
- ``snapshot.mode=no_data``: alerts are about *new* changes, as in the lite engine, so the
  existing rows are not replayed as ``r`` events (on a seeded shop that is a flood of stale
  alerts); streaming starts at the slot's creation;
- its own slot and publication named after the topic prefix: slots are cluster-wide, so two
  connectors (or the lite engine's reader) never fight over one;
- heartbeats: the slot's position moves on even while ``orders`` is quiet (other tables'
  WAL is then released);
- ``poll.interval.ms=50``: Debezium's queue is drained every 50 ms instead of every 500 ms
  (commit -> topic latency);
- ``tombstones.on.delete=false``: the topic is not compacted, and a null value after each
  delete would only be one more case for every consumer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import string
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from jobs.adapters.rest import Rest, RestError
from jobs.config_files import config_path
from jobs.errors import ServiceUnavailable, UsageError, first_line
from jobs.settings import Settings
from jobs.waiting import settles, wait_for

log = logging.getLogger(__name__)

TEMPLATE = config_path("kafka", "debezium-postgres.json")
SECRET_KEYS = frozenset({"database.password"})
REGISTER_TIMEOUT_S = 90.0
DROP_TIMEOUT_S = 20.0


class ConnectorConfig(dict[str, str]):
    """A connector's config; its repr masks secrets (configs end up in logs and tracebacks)."""

    def __repr__(self) -> str:
        return repr({k: "***" if k in SECRET_KEYS else v for k, v in self.items()})

    __str__ = __repr__


def _ident(text: str) -> str:
    """A PostgreSQL identifier from free text: lower-case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def connector_name(settings: Settings) -> str:
    return f"shoplake-orders-{settings.cdc_topic_prefix}"


def slot_name(settings: Settings) -> str:
    return f"shoplake_dbz_{_ident(settings.cdc_topic_prefix)}"[:63]


def publication_name(settings: Settings) -> str:
    return f"shoplake_dbz_{_ident(settings.cdc_topic_prefix)}_pub"[:63]


def heartbeat_topic(settings: Settings) -> str:
    """Where Debezium writes its heartbeats (its default name for our prefix)."""
    return f"__debezium-heartbeat.{settings.cdc_topic_prefix}"


def connect_url(settings: Settings) -> str:
    return f"http://{settings.connect_host}:{settings.connect_port}"


def secrets_file(settings: Settings) -> Path:
    """Where the worker's FileConfigProvider reads the database password from (owner-only)."""
    return settings.data_path / "services" / "connect" / "secrets" / f"{connector_name(settings)}"


def connector_config(settings: Settings) -> ConnectorConfig:
    """The connector's config from the template and ``settings.dsn`` (pure: no I/O)."""
    pg = psycopg.conninfo.conninfo_to_dict(settings.dsn)
    host = str(pg.get("host") or "127.0.0.1")
    if host.startswith("/"):
        raise UsageError(f"Debezium needs a TCP host in the source DSN, not the socket {host}")
    values = {
        "db_host": host,
        "db_port": str(pg.get("port") or 5432),
        "db_user": str(pg.get("user") or ""),
        "db_name": str(pg.get("dbname") or ""),
        "topic_prefix": settings.cdc_topic_prefix,
        "slot_name": slot_name(settings),
        "publication_name": publication_name(settings),
    }
    escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}
    config = ConnectorConfig(json.loads(string.Template(TEMPLATE.read_text()).substitute(escaped)))
    if pg.get("password"):
        # Connect stores configs in a topic and shows them on GET .../config: the worker
        # resolves this reference from an owner-only file instead
        config["database.password"] = f"${{file:{secrets_file(settings)}:password}}"
    return config


def _write_secret(settings: Settings) -> None:
    password = psycopg.conninfo.conninfo_to_dict(settings.dsn).get("password")
    if not password:
        return
    path = secrets_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        # a Java properties file: escape its specials
        fh.write("password=" + str(password).replace("\\", "\\\\").replace("\n", "\\n") + "\n")


# ---------------------------------------------------------------- Connect's REST API
class ConnectError(ServiceUnavailable):
    """Connect answered with an HTTP error (``status`` says which)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kafka Connect: HTTP {status}: {message}")
        self.status = status


def connect_api(settings: Settings, timeout: float = 10.0) -> Rest:
    """The shared REST client on this installation's Connect worker."""
    return Rest(
        "Kafka Connect",
        connect_url(settings),
        hint="start it: shoplake services start --full",
        timeout=timeout,
    )


def rest(settings: Settings, method: str, path: str, body: object = None) -> Any:
    """One call to Connect's REST API: the parsed JSON (None for an empty reply).

    An error status raises ``ConnectError`` (a ``ServiceUnavailable``: the CLI shows it as
    one line); callers read its ``status`` for the answers they expect (404, 409).
    """
    try:
        return connect_api(settings).call(method, path, body)
    except RestError as exc:
        raise ConnectError(exc.status, exc.message) from exc


def status(settings: Settings) -> dict[str, Any] | None:
    """Connect's status of our connector (``connector.state``, ``tasks``), None when absent."""
    try:
        found = rest(settings, "GET", f"/connectors/{connector_name(settings)}/status")
    except ConnectError as exc:
        if exc.status == 404:
            return None
        raise
    return found if isinstance(found, dict) else None


def _state(found: dict[str, Any] | None) -> tuple[str, str]:
    """("RUNNING" | "FAILED" | "PENDING", the first line of a failure's trace)."""
    if found is None:
        return "PENDING", ""
    parts = [found.get("connector", {}), *found.get("tasks", [])]
    for part in parts:
        if part.get("state") == "FAILED":
            trace = str(part.get("trace") or "no trace").strip().splitlines()
            return "FAILED", trace[0] if trace else ""
    if found.get("tasks") and all(p.get("state") == "RUNNING" for p in parts):
        return "RUNNING", ""
    return "PENDING", ""


# ---------------------------------------------------------------- PostgreSQL side
def prepare_table(settings: Settings) -> None:
    """``REPLICA IDENTITY FULL`` on orders: updates then carry the whole ``before`` row.

    The lite engine's ``cdc_pg.ensure_slot`` does the same; "newly broken" rules need it.
    """
    try:
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.orders REPLICA IDENTITY FULL")
    except psycopg.errors.UndefinedTable as exc:
        raise ServiceUnavailable(
            "no table public.orders in the source database: create it first (shoplake seed)"
        ) from exc
    except psycopg.Error as exc:
        raise ServiceUnavailable(f"source database: {first_line(exc)}") from exc


def _slot_active(settings: Settings) -> bool | None:
    """Whether our slot streams to a reader now; None when the slot does not exist."""
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot_name(settings),)
        ).fetchone()
    return None if row is None else bool(row[0])


def drop_slot(settings: Settings, timeout_s: float = DROP_TIMEOUT_S) -> list[str]:
    """Drop our slot (once its reader let go, else end the reader) and our publication."""
    slot, dropped = slot_name(settings), []
    # the task closes its replication connection as Connect stops it; past the wait, the
    # backend that still holds the slot is ended below
    settles(lambda: not _slot_active(settings), timeout=timeout_s)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is not None:
            if row[0] is not None:
                log.warning("slot %s still in use by pid %s: ending that backend", slot, row[0])
                conn.execute("SELECT pg_terminate_backend(%s, 5000)", (row[0],))
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            dropped.append(f"slot {slot}")
        pub = publication_name(settings)
        if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (pub,)).fetchone():
            conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(pub)))
            dropped.append(f"publication {pub}")
    return dropped


# ---------------------------------------------------------------- use cases
def register(settings: Settings, timeout_s: float = REGISTER_TIMEOUT_S) -> dict[str, Any]:
    """Create or update the connector, then wait until it streams; returns its status.

    Idempotent: the same config PUT twice changes nothing. Returns once the connector and
    its task are RUNNING *and* the slot has a reader, so a commit after this is captured.
    """
    prepare_table(settings)
    _write_secret(settings)
    name, config = connector_name(settings), connector_config(settings)
    deadline = time.monotonic() + timeout_s
    busy: list[ConnectError] = []

    def accepted() -> bool:
        try:
            rest(settings, "PUT", f"/connectors/{name}/config", dict(config))
        except ConnectError as exc:
            # 409: the worker is (re)joining its group; anything else is our mistake
            if exc.status != 409:
                raise
            busy.append(exc)
            return False
        return True

    # still busy at the deadline: the last 409 is the error
    wait_for(accepted, timeout=timeout_s, every=0.5, error=lambda _: busy[-1])
    restarted, state = False, "PENDING"

    def streaming() -> dict[str, Any] | None:
        nonlocal restarted, state
        found = status(settings)
        state, why = _state(found)
        if state == "FAILED" and not restarted:
            # e.g. its task died while Kafka was down: one restart of what failed, then it
            # resumes from its committed offset (the slot kept everything since)
            log.warning("Debezium connector %s failed (%s): restarting it", name, why)
            rest(settings, "POST", f"/connectors/{name}/restart?includeTasks=true&onlyFailed=true")
            restarted = True
            time.sleep(2.0)  # the status shows FAILED until the restart is under way
            return None
        if state == "FAILED":
            raise ServiceUnavailable(f"Debezium connector {name} failed: {why}")
        return found if state == "RUNNING" and _slot_active(settings) else None

    found = wait_for(
        streaming,
        timeout=max(deadline - time.monotonic(), 0.0),
        error=lambda _: ServiceUnavailable(
            f"Debezium connector {name} not streaming after {timeout_s:.0f} s "
            f"(state {state}); see {settings.data_path / 'services' / 'connect'}"
        ),
    )
    assert found is not None  # wait_for returns a truthy result (no stop event here)
    return found


def unregister(settings: Settings) -> list[str]:
    """Remove the connector, then its slot and publication; returns what was removed."""
    removed = []
    name = connector_name(settings)
    try:
        rest(settings, "DELETE", f"/connectors/{name}")
        removed.append(f"connector {name}")
    except ConnectError as exc:
        if exc.status != 404:
            raise
    removed += drop_slot(settings)
    secrets_file(settings).unlink(missing_ok=True)
    return removed
