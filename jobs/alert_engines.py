"""The two alert engines (``Engine``) put together from settings: their source, the PostgreSQL
ledger and the configured sinks (all from ``jobs.bootstrap.Resources``) around the one loop
(``jobs.alerts.engine.run``).

- ``python``: shoplake's own process reads PostgreSQL's logical slot and evaluates the rules;
- ``flink``: the rules run as a Flink SQL job (``flink_job``); shoplake delivers its output
  topic. (``lite``, the old name of ``python``, is still accepted.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from jobs.alerts import Engine, engine
from jobs.alerts.ledger import postgres
from jobs.alerts.sinks import Sink
from jobs.alerts.sources import pg_slot
from jobs.bootstrap import Resources
from jobs.settings import Settings


def build_sinks(
    settings: Settings,
    stop: threading.Event,
    *,
    console: bool | None = None,
    console_fmt: Literal["text", "json"] = "text",
    lake: bool = True,
) -> list[Sink]:
    """The sinks the settings ask for (``Resources.alert_sinks``)."""
    return Resources(settings).alert_sinks(
        stop, console=console, console_fmt=console_fmt, lake=lake
    )


def run_python(
    settings: Settings,
    stop: threading.Event,
    sinks: Sequence[Sink] | None = None,
    slot: str | None = None,
    ping_interval: float = 5.0,
    reconnect_every: float | None = None,
) -> None:
    """The python engine until ``stop``: read the slot, record alerts durably, confirm, deliver.

    With ``reconnect_every`` a lost database connection is retried (the slot resumes where
    it was confirmed); without it, it ends the run as ServiceUnavailable.
    """
    postgres.check_database(settings.dsn)
    res = Resources(settings)
    source = res.alert_source(Engine.PYTHON, slot=slot, ping_interval=ping_interval)
    sinks = list(sinks) if sinks is not None else res.alert_sinks(stop)
    engine.run(source, res.alert_ledger(), sinks, stop, reconnect_every)


def run_flink(
    settings: Settings,
    stop: threading.Event,
    sinks: Sequence[Sink] | None = None,
    group: str | None = None,
    retry_every: float = 5.0,
) -> None:
    """The flink engine's delivery until ``stop``: consume the alerts topic, record, commit,
    deliver. Unreachable PostgreSQL or Kafka at start is ServiceUnavailable; a later loss of
    either is retried every ``retry_every`` seconds (the committed offsets say where)."""
    postgres.check_database(settings.dsn)
    res = Resources(settings)
    sinks = list(sinks) if sinks is not None else res.alert_sinks(stop)
    engine.run(
        res.alert_source(Engine.FLINK, group=group), res.alert_ledger(), sinks, stop, retry_every
    )


def reset(settings: Settings, slot: str | None = None, purge_ledger: bool = False) -> list[str]:
    """Drop the slot and publication (and, if asked, the delivery ledger)."""
    import psycopg

    dropped = pg_slot.drop_slot(settings.dsn, slot)
    if purge_ledger:
        with psycopg.connect(settings.dsn) as conn:
            postgres.drop_schema(conn)
        dropped.append("ledger tables")
    return dropped
