"""The sinks a configuration asks for (the composition root passes what it read)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from jobs.alerts.sinks.base import Sink

if TYPE_CHECKING:
    from jobs.adapters.lake import Lake

log = logging.getLogger(__name__)
TELEGRAM_HINT = (
    "Telegram is not configured, so alerts go to the console; set "
    "SHOPLAKE_TELEGRAM_BOT_TOKEN and SHOPLAKE_TELEGRAM_CHAT_ID to receive them there"
)


@dataclass(frozen=True)
class TelegramTarget:
    api_url: str
    token: str
    chat_id: str


def build_sinks(
    stop: threading.Event,
    *,
    telegram: TelegramTarget | None = None,
    webhook_url: str | None = None,
    console: bool | None = None,
    console_fmt: Literal["text", "json"] = "text",
    lake: Lake | None = None,
) -> list[Sink]:
    """Telegram, the webhook, the console and the lake, as given; the console when Telegram
    is not configured and ``console`` is None. Waits inside the sinks end when ``stop`` is set."""
    sinks: list[Sink] = []
    if telegram is not None:
        from jobs.alerts.sinks.telegram import TelegramSink

        sinks.append(
            TelegramSink(telegram.api_url, telegram.token, telegram.chat_id, wait=stop.wait)
        )
    elif console is None:
        log.info(TELEGRAM_HINT)
        console = True
    if webhook_url:
        from jobs.alerts.sinks.webhook import WebhookSink

        sinks.append(WebhookSink(webhook_url, wait=stop.wait))
    if console:
        from jobs.alerts.sinks.console import ConsoleSink

        sinks.append(ConsoleSink(fmt=console_fmt))
    if lake is not None:
        from jobs.alerts.sinks.lake import LakeSink

        sinks.append(LakeSink(lake))
    return sinks
