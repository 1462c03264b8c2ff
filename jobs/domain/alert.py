"""The alert record: what a rule raises, what the Flink job writes, what the ledger keeps and
every sink receives. One frozen, typed record for both engines and every consumer.

It also reads as a mapping of the contract's fields, in the contract's order: that is the
JSON object the alerts topic, the ledger's ``record`` column and the webhook carry, so
``dict(alert)`` and ``to_json(alert)`` give it as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True, eq=False)  # equality: Mapping's, so it equals its JSON
class Alert(Mapping[str, Any]):
    """One alert. The order fields carry what the source row held (text normally: exact
    decimals as strings, the quantity an integer); a record read from the alerts topic is
    taken as it came, so they are not narrowed further."""

    alert_id: str  # deterministic: the same change seen twice gives the same id
    alert_type: str  # the rule's name
    severity: str
    order_id: Any
    customer_id: Any
    product_name: Any
    total: Any
    quantity: Any
    price: Any
    detected_at: str  # UTC ISO 8601 with milliseconds
    source_ts: str | None  # the source commit, same form; None when the change had no time
    message: str
    source_lsn: int  # the change's position in the source's WAL

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Alert:
        """The alert in a stored or received JSON object (fields it lacks are None)."""
        found: dict[str, Any] = {f: record.get(f) for f in ALERT_FIELDS}
        return cls(**found)

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_SET:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(ALERT_FIELDS)

    def __len__(self) -> int:
        return len(ALERT_FIELDS)

    def __or__(self, other: Mapping[str, Any]) -> dict[str, Any]:
        """The record with fields replaced or added: a plain JSON object, no longer an alert."""
        return {**self, **other}


ALERT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Alert))
_FIELD_SET = frozenset(ALERT_FIELDS)
