"""Telegram Bot API ``sendMessage``: readable text, per-chat rate limit, bursts batched."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from jobs.alerts.sinks.base import WHERE, Alert, HttpPoster, Sink
from jobs.domain.alert_format import message_text, plan_messages

IN_DOUBT_NOTE = "↻ re-sent after a restart: this may repeat an earlier message"


def min_interval_for(chat_id: str) -> float:
    """Telegram's limits: about one message a second per chat, 20 a minute in groups."""
    return 3.0 if chat_id.startswith("-") else 1.0


class TelegramSink(Sink):
    name = "telegram"

    def __init__(
        self,
        api_url: str,
        token: str,
        chat_id: str,
        min_interval: float | None = None,
        wait: Callable[[float], Any] | None = None,
        **retry: Any,
    ) -> None:
        self.token, self.chat_id = token, chat_id
        self.url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.min_interval = min_interval_for(chat_id) if min_interval is None else min_interval
        self.wait = wait or threading.Event().wait
        # the token is in the URL path: the poster scrubs it from errors and httpx's log lines
        self.poster = HttpPoster([token], WHERE["telegram"], wait=self.wait, **retry)
        self.secrets = self.poster.secrets
        self._last_sent = 0.0

    def plan(self, alerts: Sequence[Alert]) -> list[list[Alert]]:
        return [list(g) for g in plan_messages(alerts, IN_DOUBT_NOTE)]

    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        for group in plan_messages(alerts, IN_DOUBT_NOTE):
            self._pace()
            text = message_text(group, IN_DOUBT_NOTE if in_doubt else None)
            self.poster.post(
                self.url, {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
            )
            self._last_sent = time.monotonic()

    def _pace(self) -> None:
        # waiting here lets the backlog grow, and the next claim batches it into one message
        gap = self._last_sent + self.min_interval - time.monotonic()
        if gap > 0:
            self.wait(gap)

    def close(self) -> None:
        self.poster.close()
