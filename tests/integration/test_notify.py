"""The dashboard notification on the real Redis: payload, channel, keys and their TTLs."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from jobs.adapters import notify
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings

pytestmark = pytest.mark.integration

MESSAGE = {
    "event": "metrics_updated",
    "timestamp": "2024-06-12T15:30:00+00:00",
    "run_id": "20240612T153000Z-abc",
    "metrics": {
        "overall_metrics": {
            "total_orders": 3,
            "total_revenue": 30.99,
            "last_updated": "2024-06-12T15:30:00+00:00",
        }
    },
}


def test_subscriber_gets_the_message_and_keys_carry_ttls(redis_pool_settings: Settings) -> None:
    url = redis_pool_settings.redis_url
    r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(notify.CHANNEL)
    assert pubsub.get_message(timeout=2) is None  # the subscribe confirmation is skipped

    assert notify.publish_update(url, MESSAGE) >= 1
    received = None
    deadline = time.monotonic() + 5
    while received is None and time.monotonic() < deadline:
        received = pubsub.get_message(timeout=1)
    assert received is not None and received["channel"] == "dashboard:updates"
    body = json.loads(received["data"])
    assert set(body) == {"event", "timestamp", "run_id", "metrics"}
    assert body == MESSAGE

    assert r.get("dashboard:last_update") == MESSAGE["timestamp"]
    assert json.loads(r.get("dashboard:latest_metrics") or "") == MESSAGE["metrics"]
    assert 3590 <= r.ttl("dashboard:last_update") <= 3600
    assert 290 <= r.ttl("dashboard:latest_metrics") <= 300
    assert notify.latest_metrics(url) == MESSAGE["metrics"]
    pubsub.close()
    r.close()


def test_listen_delivers_until_stopped(redis_pool_settings: Settings) -> None:
    got: list[dict[str, Any]] = []
    states: list[bool] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=notify.listen,
        daemon=True,
        args=(redis_pool_settings.redis_url, got.append, lambda ok, _: states.append(ok), stop),
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not states and time.monotonic() < deadline:
        time.sleep(0.05)
    notify.publish_update(redis_pool_settings.redis_url, MESSAGE)
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert states == [True] and got == [MESSAGE] and not thread.is_alive()


def test_unreachable_redis_is_reported_not_raised() -> None:
    states: list[tuple[bool, str]] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=notify.listen,
        daemon=True,
        args=("redis://127.0.0.1:1/0", lambda m: None, lambda ok, d: states.append((ok, d)), stop),
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not states and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert states and states[0][0] is False and "unreachable" in states[0][1]
    with pytest.raises(ServiceUnavailable, match=r"Redis at 127\.0\.0\.1:1 "):
        notify.publish_update("redis://127.0.0.1:1/0", MESSAGE)
