"""Where alerts come from, behind one port: the PostgreSQL slot (``pg_slot``, rules evaluated
here), the Flink job's alerts topic (``flink_topic``) and an in-memory source (``memory``)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from jobs.alerts.model import Batch, Rejection
from jobs.domain.alert import Alert

Item = TypeVar("Item")


class AlertSource(Protocol[Item]):
    """A stream of items (change events, topic messages) that give alerts.

    Read items stay unconfirmed until ``confirm``: a source opened again after a crash or a
    lost connection starts after the last confirmed batch, so nothing unrecorded is skipped.
    Errors: ``model.Lost`` (retry later), ``model.Reopen`` (reopen now), anything else ends
    the run.
    """

    @property
    def what(self) -> str:
        """What it reads, for the log ("reading slot x")."""
        ...

    @property
    def refused(self) -> str:
        """How a set-aside reason starts when the ledger refused an item's alerts."""
        ...

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def poll(self) -> Batch[Item]:
        """The next items (briefly waiting for them); an empty batch when none came."""
        ...

    def alerts(self, item: Item) -> list[Alert]:
        """The item's alerts; ``model.Rejected`` when it must be set aside."""
        ...

    def reject(self, item: Item, reason: str) -> Rejection: ...

    def confirm(self, batch: Batch[Item]) -> None:
        """The batch is durable in the ledger: never read it again."""
        ...

    def close(self) -> None: ...
