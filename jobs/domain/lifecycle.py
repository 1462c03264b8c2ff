"""A live order's way through its statuses: one plan per order, the same for whoever asks.

An order's fate (the status it ends in, with the shares of ``STATUS_WEIGHTS``) and the
delays of its steps derive from a hash of its id and the time it was placed, nothing
else: a simulator that restarts finds the same plan for the orders it placed before.
The paths::

    completed   pending -> processing -> completed
    processing  pending -> processing
    pending     (stays pending)
    cancelled   pending -> cancelled
    returned    pending -> processing -> completed -> returned

Pure: no I/O, no clock (callers pass the times).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from jobs.domain.generator_catalog import (
    CANCELLATION_HOURS,
    COMPLETION_HOURS,
    PAYMENT_HOURS,
    RETURN_HOURS,
    STATUS_WEIGHTS,
    STATUSES,
)

US_PER_H = 3600 * 1_000_000
# no step of a plan comes later than this after the order was placed
HORIZON = dt.timedelta(hours=RETURN_HOURS[1])
# the steps in the order a catch-up must apply them (an order late by hours may take two)
STEP_ORDER: tuple[tuple[str, str], ...] = (
    ("pending", "processing"),
    ("pending", "cancelled"),
    ("processing", "completed"),
    ("completed", "returned"),
)


@dataclass(frozen=True, order=True)
class Step:
    """One planned status change: at ``at_us`` (UTC µs), ``order_id`` goes ``src -> dst``."""

    at_us: int
    order_id: str
    src: str
    dst: str


def _uniforms(order_ids: Sequence[str]) -> np.ndarray:
    """Four uniforms in [0, 1) per id from its BLAKE2b digest (stable across runs)."""
    raw = b"".join(hashlib.blake2b(i.encode(), digest_size=16).digest() for i in order_ids)
    words = np.frombuffer(raw, dtype="<u4").reshape(len(order_ids), 4)
    return words.astype(np.float64) / 2.0**32


def _between(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return ((bounds[0] + u * (bounds[1] - bounds[0])) * US_PER_H).astype(np.int64)


def fates(order_ids: Sequence[str]) -> list[str]:
    """The status each order ends in."""
    if not order_ids:
        return []
    u = _uniforms(order_ids)[:, 0]
    idx = np.searchsorted(np.cumsum(STATUS_WEIGHTS), u, side="right")
    return [STATUSES[min(i, len(STATUSES) - 1)] for i in idx.tolist()]


def plan(order_ids: Sequence[str], placed_us: Sequence[int] | np.ndarray) -> list[Step]:
    """Every planned step of these orders, placed at ``placed_us`` (UTC µs)."""
    if not order_ids:
        return []
    placed = np.asarray(placed_us, dtype=np.int64)
    u = _uniforms(order_ids)
    pay = placed + _between(u[:, 1], PAYMENT_HOURS)
    done = np.maximum(placed + _between(u[:, 2], COMPLETION_HOURS), pay + 1)
    cancel = placed + _between(u[:, 3], CANCELLATION_HOURS)
    back = np.maximum(placed + _between(u[:, 3], RETURN_HOURS), done + 1)
    steps: list[Step] = []
    for k, (oid, fate) in enumerate(zip(order_ids, fates(order_ids), strict=True)):
        if fate in ("completed", "processing", "returned"):
            steps.append(Step(int(pay[k]), oid, "pending", "processing"))
        if fate in ("completed", "returned"):
            steps.append(Step(int(done[k]), oid, "processing", "completed"))
        if fate == "returned":
            steps.append(Step(int(back[k]), oid, "completed", "returned"))
        if fate == "cancelled":
            steps.append(Step(int(cancel[k]), oid, "pending", "cancelled"))
    return steps


class Schedule:
    """Planned steps waiting for their time; ``due`` hands out those whose time has come."""

    def __init__(self) -> None:
        self._heap: list[Step] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, steps: Iterable[Step]) -> None:
        """Plan these steps (any order)."""
        for step in steps:
            heapq.heappush(self._heap, step)

    def due(self, now_us: int) -> list[Step]:
        """The steps at or before ``now_us``, in time order, removed from the schedule."""
        out: list[Step] = []
        while self._heap and self._heap[0].at_us <= now_us:
            out.append(heapq.heappop(self._heap))
        return out
