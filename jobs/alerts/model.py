"""What the engine loop, the sources and the ledgers exchange: batches, set-aside records and
the three errors the loop acts on (``Lost``, ``Reopen``, ``Refused``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")


def lsn_text(lsn: int) -> str:
    """PostgreSQL's own notation of a WAL position (what pg_replication_slots shows)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass
class Batch(Generic[Item]):
    """What one poll of a source read: items to evaluate, items already set aside while
    reading, and the position ``confirm`` moves the source to (None: nothing new)."""

    items: Sequence[Item] = ()
    rejected: list[Rejection] = field(default_factory=list)
    position: object | None = None


@dataclass(frozen=True)
class RejectedChange:
    """A source change set aside (python engine): where it is, what it held, and why."""

    lsn: int
    xid: int
    table: str  # schema.table
    op: str  # c, u or d
    raw: dict[str, str | None]
    reason: str

    def as_row(self) -> tuple[int, int, str, str, dict[str, str | None], str]:
        return (self.lsn, self.xid, self.table, self.op, self.raw, self.reason)

    def line(self) -> str:
        return (
            f"set aside the change at {lsn_text(self.lsn)} (xid {self.xid}, {self.table}):"
            f" {self.reason}"
        )


@dataclass(frozen=True)
class RejectedMessage:
    """A message of the alerts topic quarantined (flink engine): its position, the reason and
    the value as it came."""

    topic: str
    partition: int
    offset: int
    reason: str
    value: bytes | None

    def as_row(self) -> tuple[str, int, int, str, bytes | None]:
        return (self.topic, self.partition, self.offset, self.reason, self.value)

    def line(self) -> str:
        return f"quarantined {self.topic}[{self.partition}]@{self.offset}: {self.reason}"


Rejection = RejectedChange | RejectedMessage


class Rejected(ValueError):
    """An item that gives no alert and must be set aside; the message is the reason kept."""


class Lost(Exception):
    """A connection (the source's or the ledger's) went away: close, wait, open again.

    ``at_start`` is what to say instead when it happens while starting (the user's to fix).
    """

    def __init__(self, what: str, reason: str, at_start: str | None = None) -> None:
        super().__init__(f"{what} lost ({reason})")
        self.what, self.reason = what, reason
        self.at_start = at_start or f"alerts: {what} lost: {reason}"


class Reopen(Exception):
    """The source answers but stalls: close it and open it again at once."""


class Refused(Exception):
    """The ledger cannot hold a value of the batch (a NUL in a text, a too large number)."""
