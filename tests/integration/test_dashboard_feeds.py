"""The dashboard's feeds against a real Redis that carries malformed values and messages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from jobs.adapters import notify
from jobs.domain.dashboard import dump_update
from jobs.settings import Settings
from tests.unit.test_dashboard_messages import published
from web.feeds import Feeds
from web.state import LiveState


@pytest.fixture
def settings(redis_pool_settings: Settings, tmp_path: Path) -> Settings:
    """The pool's Redis (emptied) and an empty folder lake (nothing to fall back on)."""
    redis.Redis.from_url(redis_pool_settings.redis_url).flushdb()
    return redis_pool_settings.model_copy(
        update={"lake_uri": str(tmp_path / "lake"), "data_dir": tmp_path / "data"}
    )


def shown(state: LiveState) -> dict[str, object] | None:
    """What the page shows, as JSON (the state keeps the typed message)."""
    message = state.view().message
    return None if message is None else dump_update(message)


def wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("stored", ["{not json", "[1, 2, 3]", '{"overall_metrics": 5}', "null"])
def test_a_malformed_latest_metrics_key_is_ignored(
    settings: Settings, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    r.set(notify.LATEST_METRICS_KEY, stored)
    state = LiveState()
    feeds = Feeds(settings, state, poll_s=0.5)
    try:
        feeds.start()  # reads the key at once, and again on every (re)connect
        wait_for(lambda: state.view().mode == "live")
        assert state.view().message is None
        # the listener survived and still takes good messages
        good = published("run-good")
        r.publish(notify.CHANNEL, json.dumps(good))
        wait_for(lambda: state.view().message is not None)
        assert shown(state) == good
    finally:
        feeds.close()
    if stored != "null":
        assert "malformed" in caplog.text


def test_malformed_published_messages_are_skipped(settings: Settings) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    state = LiveState()
    feeds = Feeds(settings, state, poll_s=0.5)
    try:
        feeds.start()
        wait_for(lambda: state.view().mode == "live")
        wait_for(lambda: r.pubsub_numsub(notify.CHANNEL)[0][1] >= 1)
        for bad in ("{oops", json.dumps({"metrics": []}), json.dumps({"metrics": {"x": 1}})):
            r.publish(notify.CHANNEL, bad)
        good = published("run-after-garbage")
        r.publish(notify.CHANNEL, json.dumps(good))
        wait_for(lambda: state.view().message is not None)
        assert shown(state) == good and state.view().version == 1
        assert all(t.is_alive() for t in feeds._threads)
    finally:
        feeds.close()
