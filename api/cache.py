"""The Redis recommendation cache: keyed by model version, never in the way when Redis is down.

In front of Redis sits a small in-process ``HotCache`` of the same keys: a body that Redis
returned or accepted is served from memory the next time, without a round trip (the round
trip was most of a cache hit's cost, and a second process on the request's path: its share of
a loaded machine's CPU made the tail). Only bodies Redis holds get in, so with Redis down
every answer is computed and says ``cached: false``, as before.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.hot import HotCache
from jobs.settings import without_password

log = logging.getLogger(__name__)

TTL_SECONDS = 24 * 3600
# after a failure, skip Redis this long: a dead Redis must not add a timeout to every request
RETRY_AFTER_S = 2.0


def reco_key(version: str, customer_id: str, top_n: int) -> str:
    """The version is part of the key, so a reload can never serve another model's answer."""
    return f"shoplake:reco:{version}:{top_n}:{customer_id}"


class RecoCache:
    """GET/SET of serialised responses with short timeouts and a back-off after errors."""

    def __init__(self, url: str, timeout: float = 0.25, hot: HotCache | None = None) -> None:
        self.url = url
        self.hot = HotCache() if hot is None else hot
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
        )
        self._down_until = 0.0
        self.last_error = ""

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._usable():
            where = without_password(self.url)  # the URL may carry the Redis password
            log.warning("redis at %s unavailable, serving uncached: %s", where, exc)
        self.last_error = str(exc) or type(exc).__name__
        self._down_until = time.monotonic() + RETRY_AFTER_S

    async def get(self, key: str) -> tuple[bytes | None, str]:
        """(value, ``hit`` | ``miss`` | ``unavailable``); a hot key answers from memory."""
        value = self.hot.get(key)
        if value is not None:
            return value, "hit"
        if not self._usable():
            return None, "unavailable"
        try:
            raw = await self.client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None, "unavailable"
        if not isinstance(raw, bytes):
            return None, "miss"
        self.hot.put(key, raw)
        return raw, "hit"

    async def set(self, key: str, value: bytes) -> None:
        if not self._usable():
            return
        try:
            await self.client.set(key, value, ex=TTL_SECONDS)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self.hot.put(key, value)

    def forget(self) -> None:
        """Empty the in-process copies (a reload: the old version's keys are never asked again)."""
        self.hot.clear()

    async def ping(self) -> str:
        """``ok`` or why not: the health check always asks Redis itself."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return f"down: {self.last_error}"
        self._down_until = 0.0
        return "ok"

    async def close(self) -> None:
        await self.client.aclose()
