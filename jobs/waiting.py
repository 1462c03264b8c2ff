"""The one way to wait for something with a deadline (every poll loop uses it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Timeout(TimeoutError):
    """``wait_for`` gave up: ``what`` did not happen within ``timeout`` seconds."""


def wait_for(
    check: Callable[[], T],
    *,
    timeout: float,
    every: float = 0.2,
    what: str = "the condition",
    stop: threading.Event | None = None,
    error: Callable[[str], Exception] = Timeout,
) -> T:
    """Call ``check`` every ``every`` seconds until it returns something truthy; return it.

    Raises ``error(message)`` (``Timeout`` by default) when ``timeout`` passes first, and
    returns the last (falsy) result early when ``stop`` is set. ``check`` may raise to end
    the wait with its own error (a job that failed is not worth waiting for).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or (stop is not None and stop.is_set()):
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            raise error(f"{what}: not done after {timeout:.0f} s")
        if stop is not None:
            stop.wait(min(every, left))
        else:
            time.sleep(min(every, left))


def settles(
    check: Callable[[], object],
    *,
    timeout: float,
    every: float = 0.2,
    stop: threading.Event | None = None,
) -> bool:
    """Like ``wait_for`` without the error: whether ``check`` came true in time."""
    try:
        return bool(wait_for(check, timeout=timeout, every=every, stop=stop))
    except Timeout:
        return False
