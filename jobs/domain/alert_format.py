"""Human-readable alert text for chat messages (Telegram plain text, no markup to escape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

A = TypeVar("A", bound=Mapping[str, Any])

TELEGRAM_LIMIT = 4096  # characters per sendMessage text
_ICONS = {"critical": "🛑", "high": "🚨", "medium": "⚠️", "low": "ℹ️"}


def money(value: Any) -> str:
    """1234.5 -> '1,234.50'; anything that is not a number is shown as given (or '-')."""
    if value is None or value == "":
        return "-"
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def short_id(alert: Mapping[str, Any]) -> str:
    return str(alert.get("alert_id", ""))[:12]


def one_alert(alert: Mapping[str, Any]) -> str:
    """The full text of a single alert: rule, order, customer, amounts, reason, id."""
    icon = _ICONS.get(str(alert.get("severity")), "🔔")
    qty = alert.get("quantity")
    return "\n".join(
        [
            f"{icon} {alert.get('alert_type')} ({alert.get('severity')})",
            f"Order {alert.get('order_id') or '-'} · customer {alert.get('customer_id') or '-'}",
            f"Product: {alert.get('product_name') or '-'}",
            f"Total {money(alert.get('total'))} · qty {qty if qty is not None else '-'}"
            f" · price {money(alert.get('price'))}",
            f"{alert.get('message', '')}",
            f"at {alert.get('source_ts') or alert.get('detected_at')} · id {short_id(alert)}",
        ]
    )


def compact_line(alert: Mapping[str, Any]) -> str:
    """One line per alert, for bursts batched into one message."""
    icon = _ICONS.get(str(alert.get("severity")), "🔔")
    return (
        f"{icon} {alert.get('alert_type')} · order {alert.get('order_id') or '-'}"
        f" · cust {alert.get('customer_id') or '-'} · total {money(alert.get('total'))}"
        f" · qty {alert.get('quantity')} · id {short_id(alert)}"
    )


def message_text(alerts: Sequence[Mapping[str, Any]], note: str | None = None) -> str:
    """One message for one alert or a burst of them (the caller keeps it within the limit)."""
    head = [note] if note else []
    if len(alerts) == 1:
        return "\n".join([*head, one_alert(alerts[0])])
    return "\n".join([*head, f"🔔 {len(alerts)} shoplake alerts", *map(compact_line, alerts)])


def plan_messages(
    alerts: Sequence[A], note: str | None = None, limit: int = TELEGRAM_LIMIT
) -> list[list[A]]:
    """Split a burst into groups whose message text fits in one chat message each."""
    groups: list[list[A]] = []
    current: list[A] = []
    for alert in alerts:
        if current and len(message_text([*current, alert], note)) > limit:
            groups.append(current)
            current = []
        current.append(alert)
    if current:
        groups.append(current)
    return groups
