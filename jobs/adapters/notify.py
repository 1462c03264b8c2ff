"""Redis for the live dashboard: the ``dashboard:updates`` channel and the two freshness keys."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from jobs.domain.dashboard import DashboardUpdate, dump_update
from jobs.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CHANNEL = "dashboard:updates"
LAST_UPDATE_KEY = "dashboard:last_update"
LATEST_METRICS_KEY = "dashboard:latest_metrics"
LAST_UPDATE_TTL_S = 3600
LATEST_METRICS_TTL_S = 300
TIMEOUT_S = 2.0


def client(redis_url: str) -> redis.Redis:
    """A client whose every call gives up after a couple of seconds."""
    return redis.Redis.from_url(
        redis_url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        decode_responses=True,
        health_check_interval=15,
    )


def publish_update(redis_url: str, message: dict[str, Any]) -> int:
    """SET both keys with their TTLs, then PUBLISH; returns how many subscribers got it.

    The keys go first (one MULTI), so a subscriber that reads them on the message
    already sees the new values.
    """
    body = json.dumps(message, separators=(",", ":"))
    metrics = json.dumps(message["metrics"], separators=(",", ":"))
    r = client(redis_url)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.set(LAST_UPDATE_KEY, message["timestamp"], ex=LAST_UPDATE_TTL_S)
        pipe.set(LATEST_METRICS_KEY, metrics, ex=LATEST_METRICS_TTL_S)
        pipe.publish(CHANNEL, body)
        return int(pipe.execute()[-1])
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis at {_where(redis_url)} failed: {exc}") from None
    finally:
        r.close()


def latest_metrics(redis_url: str) -> Any:
    """The last published metrics as parsed JSON (None when expired, never set or not JSON);
    raises when unreachable. The value is untrusted: the caller validates its shape."""
    r = client(redis_url)
    try:
        raw = r.get(LATEST_METRICS_KEY)
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"Redis at {_where(redis_url)} failed: {exc}") from None
    finally:
        r.close()
    if not raw:
        return None
    try:
        return json.loads(str(raw))
    except ValueError:
        log.warning("ignored a malformed %s value (not JSON)", LATEST_METRICS_KEY)
        return None


def listen(
    redis_url: str,
    on_message: Callable[[dict[str, Any]], None],
    on_state: Callable[[bool, str], None],
    stop: threading.Event,
    retry_s: float = 2.0,
) -> None:
    """Deliver every ``dashboard:updates`` message until ``stop``; reconnect forever.

    ``on_state(connected, detail)`` reports each change of connectivity, so a caller
    can switch to polling while Redis is away.
    """
    connected: bool | None = None
    while not stop.is_set():
        r = client(redis_url)
        pubsub = r.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
            if connected is not True:
                connected = True
                on_state(True, f"subscribed to {CHANNEL}")
            while not stop.is_set():
                msg = pubsub.get_message(timeout=1.0)
                if msg and msg.get("type") == "message":
                    _deliver(msg["data"], on_message)
        except redis.RedisError as exc:
            if connected is not False:
                connected = False
                on_state(False, f"Redis at {_where(redis_url)} unreachable ({type(exc).__name__})")
            stop.wait(retry_s)
        finally:
            pubsub.close()
            r.close()


def _deliver(data: Any, on_message: Callable[[dict[str, Any]], None]) -> None:
    try:
        message = json.loads(data)
    except (TypeError, ValueError):
        log.warning("ignored a malformed %s message", CHANNEL)
        return
    if isinstance(message, dict) and isinstance(message.get("metrics"), dict):
        on_message(message)


def _where(redis_url: str) -> str:
    """host:port of the URL, never a password."""
    from urllib.parse import urlparse

    parsed = urlparse(redis_url)
    return f"{parsed.hostname}:{parsed.port or 6379}"


class DashboardChannel:
    """The dashboard's Redis channel and keys at one URL: what the composition root hands
    to the metrics job (publish) and to the dashboard (latest, listen)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def __repr__(self) -> str:
        return f"DashboardChannel({_where(self.redis_url)})"  # never the password

    def publish(self, update: DashboardUpdate) -> int:
        """Publish one typed update; how many subscribers got it."""
        return publish_update(self.redis_url, dump_update(update))

    def latest(self) -> Any:
        return latest_metrics(self.redis_url)

    def listen(
        self,
        on_message: Callable[[dict[str, Any]], None],
        on_state: Callable[[bool, str], None],
        stop: threading.Event,
    ) -> None:
        listen(self.redis_url, on_message, on_state, stop)
