"""The recent alerts as the dashboard's Alerts page shows them: one row per alert, with the
state of its delivery to each sink. Pure: the ledger query lives in ``jobs.alerts.ledger``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# the ledger's delivery states, in the words the page uses ("dead": a dead letter)
STATE_LABELS = {
    "delivered": "delivered",
    "pending": "pending",
    "sending": "sending",
    "dead": "dead-lettered",
}


@dataclass(frozen=True)
class Delivery:
    """One (alert, sink) hand-over."""

    sink: str
    state: str  # the ledger's: pending | sending | delivered | dead
    attempts: int = 0
    error: str | None = None  # why the last attempt failed (already free of secrets)

    @property
    def label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


@dataclass(frozen=True)
class AlertRow:
    """One recorded alert and its deliveries, sinks in name order."""

    alert_id: str
    rule: str
    severity: str
    order_id: str | None
    customer_id: str | None
    total: str | None
    detected_at: str | None  # as the record holds it: UTC ISO 8601
    recorded_at: dt.datetime
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """The row as the page's table takes it (plain JSON values)."""
        return {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "severity": self.severity,
            "order_id": _text(self.order_id),
            "customer_id": _text(self.customer_id),
            "total": _text(self.total),
            "detected_at": self.detected_at or self.recorded_at.isoformat(),
            "deliveries": [
                {"sink": d.sink, "state": d.state, "label": d.label, "error": d.error or ""}
                for d in self.deliveries
            ],
        }


def _text(value: object) -> str:
    return "" if value is None else str(value)


def alert_rows(rows: Iterable[tuple[Any, ...]]) -> list[AlertRow]:
    """Group ledger rows into alerts, keeping the rows' order of first appearance.

    Each row is ``(alert_id, record, recorded_at, sink, state, attempts, last_error)``; the
    sink columns are None for an alert without a delivery (no sink was configured).
    """
    order: list[str] = []
    heads: dict[str, tuple[Mapping[str, Any], dt.datetime]] = {}
    deliveries: dict[str, list[Delivery]] = {}
    for alert_id, record, recorded_at, sink, state, attempts, error in rows:
        if alert_id not in heads:
            order.append(alert_id)
            heads[alert_id] = (record, recorded_at)
            deliveries[alert_id] = []
        if sink is not None:
            deliveries[alert_id].append(Delivery(sink, state, int(attempts or 0), error))
    out = []
    for alert_id in order:
        record, recorded_at = heads[alert_id]
        out.append(
            AlertRow(
                alert_id=alert_id,
                rule=str(record.get("alert_type") or ""),
                severity=str(record.get("severity") or ""),
                order_id=_opt(record.get("order_id")),
                customer_id=_opt(record.get("customer_id")),
                total=_opt(record.get("total")),
                detected_at=_opt(record.get("detected_at")),
                recorded_at=recorded_at,
                deliveries=tuple(sorted(deliveries[alert_id], key=lambda d: d.sink)),
            )
        )
    return out


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class SinkTotals:
    """Deliveries to one sink by state, over the whole ledger."""

    sink: str
    delivered: int = 0
    pending: int = 0
    sending: int = 0
    dead: int = 0


@dataclass(frozen=True)
class AlertsView:
    """What the Alerts page shows at one moment."""

    alerts: list[AlertRow]
    sinks: list[SinkTotals]
    rules: list[str]  # every rule with at least one alert, for the filter
    total: int  # alerts in the ledger that match the filter (the page lists the latest)
    rule: str | None = None  # the filter applied (None: all rules)

    @property
    def empty(self) -> bool:
        return not self.alerts and not self.sinks


def sink_totals(counts: Mapping[str, Mapping[str, Any]]) -> list[SinkTotals]:
    """``ledger.status()['sinks']`` as typed totals, sinks in name order."""
    return [
        SinkTotals(
            sink,
            int(n.get("delivered") or 0),
            int(n.get("pending") or 0),
            int(n.get("sending") or 0),
            int(n.get("dead") or 0),
        )
        for sink, n in sorted(counts.items())
    ]
