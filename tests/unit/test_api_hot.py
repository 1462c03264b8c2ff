"""The in-process hot cache in front of Redis: bounded, per model version, cleared on reload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from api.cache import RecoCache, reco_key
from api.hot import HotCache


def test_the_least_recently_used_body_goes_first() -> None:
    hot = HotCache(size=2)
    hot.put("a", b"A")
    hot.put("b", b"B")
    assert hot.get("a") == b"A"  # now "b" is the oldest
    hot.put("c", b"C")
    assert len(hot) == 2 and "b" not in hot
    assert (hot.get("a"), hot.get("b"), hot.get("c")) == (b"A", None, b"C")
    hot.put("a", b"A2")  # a new body for a key replaces it, no growth
    assert len(hot) == 2 and hot.get("a") == b"A2"


def test_size_zero_disables_and_a_negative_size_is_refused() -> None:
    hot = HotCache(size=0)
    hot.put("a", b"A")
    assert len(hot) == 0 and hot.get("a") is None
    with pytest.raises(ValueError, match="size"):
        HotCache(size=-1)


class FakeRedis:
    """The two commands RecoCache uses, counted; ``down`` makes them fail like a dead Redis."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.gets = self.sets = 0
        self.down = False

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        if self.down:
            raise RedisConnectionError("connection refused")
        return self.data.get(key)

    async def set(self, key: str, value: bytes, ex: int) -> None:
        self.sets += 1
        if self.down:
            raise RedisConnectionError("connection refused")
        self.data[key] = value

    async def aclose(self) -> None:
        pass


def cache(size: int = 8) -> tuple[RecoCache, FakeRedis]:
    reco = RecoCache("redis://127.0.0.1:1/0", hot=HotCache(size))
    fake = FakeRedis()
    reco.client = fake  # type: ignore[assignment]
    return reco, fake


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_stored_body_is_served_from_memory_without_a_round_trip() -> None:
    reco, fake = cache()
    key = reco_key("v1", "C1", 10)
    assert run(reco.get(key)) == (None, "miss") and fake.gets == 1
    run(reco.set(key, b'{"cached":false}'))
    assert run(reco.get(key)) == (b'{"cached":false}', "hit")
    assert fake.gets == 1  # answered from memory


def test_a_redis_hit_is_kept_for_the_next_request() -> None:
    reco, fake = cache()
    key = reco_key("v1", "C1", 10)
    fake.data[key] = b"body"  # stored by another worker
    assert run(reco.get(key)) == (b"body", "hit")
    assert run(reco.get(key)) == (b"body", "hit") and fake.gets == 1


def test_a_new_model_version_never_gets_the_old_body() -> None:
    reco, fake = cache()
    run(reco.set(reco_key("v1", "C1", 10), b"v1 body"))
    assert run(reco.get(reco_key("v2", "C1", 10))) == (None, "miss")
    assert fake.gets == 1  # the new version's key went to Redis, and Redis had nothing


def test_a_reload_forgets_the_bodies() -> None:
    reco, fake = cache()
    key = reco_key("v1", "C1", 10)
    run(reco.set(key, b"body"))
    reco.forget()
    assert len(reco.hot) == 0
    assert run(reco.get(key)) == (b"body", "hit") and fake.gets == 1  # from Redis again


def test_the_hot_cache_stays_bounded() -> None:
    reco, _ = cache(size=3)
    for n in range(10):
        run(reco.set(reco_key("v1", f"C{n}", 10), b"body"))
    assert len(reco.hot) == 3
    assert reco_key("v1", "C9", 10) in reco.hot and reco_key("v1", "C0", 10) not in reco.hot


def test_with_redis_down_nothing_is_kept_so_nothing_claims_to_be_cached() -> None:
    reco, fake = cache()
    fake.down = True
    key = reco_key("v1", "C1", 10)
    run(reco.set(key, b"body"))
    assert len(reco.hot) == 0
    assert run(reco.get(key)) == (None, "unavailable")
