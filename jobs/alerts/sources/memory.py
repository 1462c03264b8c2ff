"""A source in memory, for fast tests of the engine's exactly-once protocol.

Items are read in order, a few per batch; ``confirm`` moves the confirmed position and a
reopened source starts again after it (what a slot or a consumer group does), so a crash
before ``confirm`` replays. ``fail_next`` injects a failure before a step, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from jobs.alerts.model import Batch, Rejected, RejectedMessage
from jobs.domain.alert import Alert

T = TypeVar("T")
Offered = tuple[int, T]  # (offset, item)


class MemorySource(Generic[T]):
    refused = "not storable in the ledger"

    def __init__(
        self,
        items: Iterable[T],
        evaluate: Callable[[T], list[Alert]],
        batch_size: int = 2,
        stop_when_drained: threading.Event | None = None,
        name: str = "memory",
    ) -> None:
        self.items = list(items)
        self.evaluate, self.batch_size = evaluate, batch_size
        self.stop_when_drained = stop_when_drained
        self.what = f"reading {name}"
        self.name = name
        self.confirmed = 0  # offset of the first item not confirmed
        self.read = 0  # offset of the next item to read while open
        self.opened = 0  # how many times it was opened
        self.fail_next: dict[str, BaseException] = {}  # "open", "poll", "confirm" -> raised once
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def push(self, *items: T) -> None:
        self.items.extend(items)

    def open(self) -> None:
        self._maybe_fail("open")
        self._open, self.read = True, self.confirmed
        self.opened += 1

    def poll(self) -> Batch[Offered[T]]:
        self._maybe_fail("poll")
        end = min(self.read + self.batch_size, len(self.items))
        if end == self.read:
            if self.stop_when_drained is not None and self.confirmed == len(self.items):
                self.stop_when_drained.set()
            return Batch()
        batch: Batch[Offered[T]] = Batch(
            items=[(i, self.items[i]) for i in range(self.read, end)], position=end
        )
        self.read = end
        return batch

    def alerts(self, item: Offered[T]) -> list[Alert]:
        try:
            return self.evaluate(item[1])
        except Rejected:
            raise
        except Exception as exc:  # as the slot source: a change the rules trip on is set aside
            raise Rejected(f"evaluating failed: {exc!r}") from exc

    def reject(self, item: Offered[T], reason: str) -> RejectedMessage:
        return RejectedMessage(self.name, 0, item[0], reason, repr(item[1]).encode())

    def confirm(self, batch: Batch[Offered[T]]) -> None:
        self._maybe_fail("confirm")
        if isinstance(batch.position, int):
            self.confirmed = max(self.confirmed, batch.position)

    def close(self) -> None:
        self._open = False

    def _maybe_fail(self, step: str) -> None:
        failure = self.fail_next.pop(step, None)
        if failure is not None:
            raise failure
