"""The two alert engines (``Engine``) put together from settings: their source, the PostgreSQL
ledger and the configured sinks around the one loop (``engine.run``).

- ``python``: shoplake's own process reads PostgreSQL's logical slot and evaluates the rules;
- ``flink``: the rules run as a Flink SQL job (``flink_job``); shoplake delivers its output
  topic. (``lite``, the old name of ``python``, is still accepted.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from jobs.alerts import engine
from jobs.alerts.ledger import postgres
from jobs.alerts.sinks import Sink
from jobs.alerts.sinks.build import TelegramTarget
from jobs.alerts.sinks.build import build_sinks as _build_sinks
from jobs.alerts.sources import pg_slot
from jobs.settings import Settings


def build_sinks(
    settings: Settings,
    stop: threading.Event,
    *,
    console: bool | None = None,
    console_fmt: Literal["text", "json"] = "text",
    lake: bool = True,
) -> list[Sink]:
    """The sinks the settings ask for; the console when Telegram is not configured."""
    telegram = None
    if settings.telegram_bot_token and settings.telegram_chat_id:
        telegram = TelegramTarget(
            settings.telegram_api_url,
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_chat_id,
        )
    lake_store = None
    if lake:
        from jobs.bootstrap import lake_for

        lake_store = lake_for(settings)
    return _build_sinks(
        stop,
        telegram=telegram,
        webhook_url=settings.alert_webhook_url,
        console=console,
        console_fmt=console_fmt,
        lake=lake_store,
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
    source = pg_slot.SlotSource(settings.dsn, settings.alert_params(), slot, ping_interval)
    sinks = list(sinks) if sinks is not None else build_sinks(settings, stop)
    engine.run(source, postgres.PgLedger(settings.dsn), sinks, stop, reconnect_every)


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
    from jobs.alerts.sources.flink_topic import TopicSource  # kafka-python: only this engine

    postgres.check_database(settings.dsn)
    sinks = list(sinks) if sinks is not None else build_sinks(settings, stop)
    engine.run(
        TopicSource(settings, group), postgres.PgLedger(settings.dsn), sinks, stop, retry_every
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
