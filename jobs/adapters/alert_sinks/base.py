"""The sink interface and the shared HTTP delivery work: timeouts, bounded retries, redaction."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import httpx

log = logging.getLogger(__name__)
Alert = dict[str, Any]
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DeliveryError(Exception):
    """A batch could not be handed over; it stays pending and is retried later."""


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """Remove secrets (the bot token) from a message meant for logs or errors."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class RedactFilter(logging.Filter):
    """Scrubs secrets from log records (httpx logs request URLs, which carry the bot token)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        return True


class Sink(ABC):
    """A destination for alerts; ``plan`` cuts a backlog into batches ``send`` hands over whole."""

    name: str
    max_batch = 100

    def plan(self, alerts: Sequence[Alert]) -> list[list[Alert]]:
        return [list(alerts[i : i + self.max_batch]) for i in range(0, len(alerts), self.max_batch)]

    @abstractmethod
    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        """Deliver the whole batch or raise DeliveryError (``in_doubt``: a resend after a crash)."""

    def close(self) -> None:  # noqa: B027 - most sinks hold nothing
        """Release connections."""


class HttpPoster:
    """POST with timeouts; honours 429 retry-after, retries 5xx and network errors, bounded."""

    def __init__(
        self,
        secrets: Sequence[str | None] = (),
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        wait: Callable[[float], Any] | None = None,
    ) -> None:
        self.client = httpx.Client(timeout=TIMEOUT)
        self.secrets = list(secrets)
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self.max_retry_after = max_retry_after
        self.wait = wait or threading.Event().wait  # a stop event's wait ends sleeps at shutdown

    def post(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        delay, problem = self.backoff, "no attempt"
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self.client.post(url, json=payload, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    return resp
                problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code == 429:
                    pause = min(_retry_after(resp) or delay, self.max_retry_after)
                    log.warning("rate limited, retrying in %.1fs", pause)
                    self.wait(pause)
                    continue
                if resp.status_code < 500:
                    break  # a client error (bad chat id, bad token) does not heal by retrying
            if attempt < self.attempts:
                self.wait(delay)
                delay = min(delay * 2, self.max_backoff)
        raise DeliveryError(redact(f"POST {url} failed: {problem}", self.secrets))

    def close(self) -> None:
        self.client.close()


def _retry_after(resp: httpx.Response) -> float | None:
    """Telegram puts it in the JSON body (parameters.retry_after), HTTP in a header."""
    try:
        value = resp.json().get("parameters", {}).get("retry_after")
    except ValueError:
        value = None
    value = value if value is not None else resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
