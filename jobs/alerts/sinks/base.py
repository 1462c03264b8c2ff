"""The sink interface and the shared HTTP delivery work: timeouts, bounded retries, redaction."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from jobs.domain.alert import Alert

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


# Where each sink's credential is kept: errors and ``alerts status`` name this, never the value
WHERE = {
    "telegram": "the Telegram bot in SHOPLAKE_TELEGRAM_BOT_TOKEN",
    "webhook": "the webhook in SHOPLAKE_ALERT_WEBHOOK_URL",
    "console": "standard output",
    "lake": "gold/alerts in the lake",
}


class DeliveryError(Exception):
    """A batch could not be handed over.

    ``permanent``: the receiver refused it for good (a 4xx other than 429, a redirect), so
    the ledger keeps it as a dead letter at once; otherwise it is retried later (after
    ``retry_after`` seconds when the receiver said so), a bounded number of times.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent, self.retry_after = permanent, retry_after


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """Remove secrets (the bot token, the webhook URL) from a message meant for logs or errors.

    Longest first, so a URL goes as a whole before the path inside it.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be a credential: all of it, without its scheme, its
    password, and its path and query (a Slack-style hook keeps the key in the path)."""
    parts = httpx.URL(url)
    found = [url, url.split("://", 1)[-1], parts.password or ""]
    tail = parts.raw_path.decode(errors="replace")
    if len(tail) > 8:  # '/', '/hook': nothing to hide, and too common to scrub
        found.append(tail)
    return [s for s in found if s]


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
    secrets: Sequence[str] = ()  # scrubbed from any error of this sink before it is logged

    def plan(self, alerts: Sequence[Alert]) -> list[list[Alert]]:
        return [list(alerts[i : i + self.max_batch]) for i in range(0, len(alerts), self.max_batch)]

    @abstractmethod
    def send(self, alerts: Sequence[Alert], *, batch_key: str, in_doubt: bool = False) -> None:
        """Deliver the whole batch or raise DeliveryError (``in_doubt``: a resend after a crash)."""

    def close(self) -> None:  # noqa: B027 - most sinks hold nothing
        """Release connections."""


def quiet_http_logs(secrets: Sequence[str]) -> None:
    """httpx logs every request URL (INFO): scrub the secrets from its lines and httpcore's."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(
            isinstance(f, RedactFilter) and f.secrets == list(secrets) for f in logger.filters
        ):
            logger.addFilter(RedactFilter(secrets))


class HttpPoster:
    """POST with timeouts; honours 429 retry-after, retries 5xx and network errors, bounded.

    A 4xx other than 429, or a redirect (never followed: the alert would go elsewhere), is a
    permanent DeliveryError at once. Errors name ``target`` (where the URL is configured),
    never the URL, and have every secret scrubbed.
    """

    def __init__(
        self,
        secrets: Sequence[str | None] = (),
        target: str = "the receiver",
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        wait: Callable[[float], Any] | None = None,
    ) -> None:
        self.client = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self.secrets = [s for s in secrets if s]
        self.target = target
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self.max_retry_after = max_retry_after
        self.wait = wait or threading.Event().wait  # a stop event's wait ends sleeps at shutdown
        quiet_http_logs(self.secrets)

    def post(self, url: str, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        delay, problem, retry_after = self.backoff, "no attempt", None
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self.client.post(url, json=payload, headers=headers)
            except httpx.InvalidURL as exc:  # the setting is wrong: no retry will mend it
                raise DeliveryError(self._say(f"invalid URL: {exc}"), permanent=True) from None
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                if status < 300:
                    return resp
                problem = f"HTTP {status}: {resp.text[:200]}"
                if status < 400:
                    problem = f"HTTP {status} redirect (not followed)"
                if status < 400 or (status < 500 and status != 429):
                    # a redirect or a client error (bad chat id, too long) does not heal
                    raise DeliveryError(self._say(problem), permanent=True)
                if status == 429:
                    retry_after = _retry_after(resp) or delay
                    if retry_after > self.max_retry_after:
                        break  # the ledger's back-off waits that long, not this thread
                    log.warning("%s: rate limited, retrying in %.1fs", self.target, retry_after)
                    self.wait(retry_after)
                    continue
            if attempt < self.attempts:
                log.warning("%s; retrying in %.1fs", self._say(problem), delay)
                self.wait(delay)
                delay = min(delay * 2, self.max_backoff)
        raise DeliveryError(self._say(problem), retry_after=retry_after)

    def _say(self, problem: str) -> str:
        """``problem`` as a sentence safe to log and store: the target, no secret."""
        return redact(f"POST to {self.target} failed: {problem}", self.secrets)

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
