"""The one wait helper: returns what the check found, raises on time, stops on request."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from jobs.errors import ServiceUnavailable
from jobs.waiting import Timeout, settles, wait_for


def test_returns_the_first_truthy_result() -> None:
    calls = itertools.count(1)
    assert wait_for(lambda: next(calls) >= 3 and "ready", timeout=5, every=0.01) == "ready"
    assert next(calls) == 4  # checked exactly three times


def test_raises_its_error_with_what_was_awaited() -> None:
    with pytest.raises(Timeout, match=r"the broker: not done after 0 s"):
        wait_for(lambda: None, timeout=0.05, every=0.01, what="the broker")
    with pytest.raises(ServiceUnavailable, match="Flink job"):
        wait_for(
            lambda: False, timeout=0.05, every=0.01, what="Flink job", error=ServiceUnavailable
        )


def test_a_check_that_raises_ends_the_wait() -> None:
    def failed() -> bool:
        raise ServiceUnavailable("job FAILED")

    with pytest.raises(ServiceUnavailable, match="FAILED"):
        wait_for(failed, timeout=5)


def test_stop_returns_early_without_error() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert wait_for(lambda: 0, timeout=30, every=0.01, stop=stop) == 0
    assert time.monotonic() - started < 5


def test_settles_says_whether_it_came_true() -> None:
    assert settles(lambda: True, timeout=1) is True
    assert settles(lambda: [], timeout=0.05, every=0.01) is False
