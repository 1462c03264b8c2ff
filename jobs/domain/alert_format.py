"""Human-readable alert text for chat messages (Telegram plain text, no markup to escape).

Values come from the orders table, so they may be anything: each is put on one line (control
characters and line breaks become spaces, so a product name cannot forge a line of its own),
cut to ``FIELD_MAX`` characters, and every message fits Telegram's 4,096 characters (counted in
UTF-16 code units, as Telegram does, so emoji count twice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

A = TypeVar("A", bound=Mapping[str, Any])

TELEGRAM_LIMIT = 4096  # characters per sendMessage text
FIELD_MAX = 200  # characters of one value shown (ids, names, messages)
_CUT = "…"
_ICONS = {"critical": "🛑", "high": "🚨", "medium": "⚠️", "low": "ℹ️"}


def text_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def clean(value: Any, limit: int = FIELD_MAX) -> str:
    """A value as one line of at most ``limit`` characters."""
    text = "".join(" " if not ch.isprintable() else ch for ch in str(value))
    return text if len(text) <= limit else text[: limit - 1] + _CUT


def clip(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """The whole text cut to ``limit`` UTF-16 units (a last resort: fields are cut first)."""
    if text_length(text) <= limit:
        return text
    while text_length(text) > limit - 1:
        text = text[: max(0, len(text) - max(1, (text_length(text) - limit + 1) // 2))]
    return text + _CUT


def money(value: Any) -> str:
    """1234.5 -> '1,234.50'; anything that is not a number is shown as given (or '-')."""
    if value is None or value == "":
        return "-"
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return clean(value)


def short_id(alert: Mapping[str, Any]) -> str:
    return clean(alert.get("alert_id", ""))[:12]


def _field(alert: Mapping[str, Any], name: str) -> str:
    value = alert.get(name)
    return clean(value) if value not in (None, "") else "-"


def one_alert(alert: Mapping[str, Any]) -> str:
    """The full text of a single alert: rule, order, customer, amounts, reason, id."""
    icon = _ICONS.get(str(alert.get("severity")), "🔔")
    at = alert.get("source_ts") or alert.get("detected_at")
    return "\n".join(
        [
            f"{icon} {_field(alert, 'alert_type')} ({_field(alert, 'severity')})",
            f"Order {_field(alert, 'order_id')} · customer {_field(alert, 'customer_id')}",
            f"Product: {_field(alert, 'product_name')}",
            f"Total {money(alert.get('total'))} · qty {_field(alert, 'quantity')}"
            f" · price {money(alert.get('price'))}",
            clean(alert.get("message", ""), 4 * FIELD_MAX),
            f"at {clean(at)} · id {short_id(alert)}",
        ]
    )


def compact_line(alert: Mapping[str, Any]) -> str:
    """One line per alert, for bursts batched into one message."""
    icon = _ICONS.get(str(alert.get("severity")), "🔔")
    return (
        f"{icon} {_field(alert, 'alert_type')} · order {_field(alert, 'order_id')}"
        f" · cust {_field(alert, 'customer_id')} · total {money(alert.get('total'))}"
        f" · qty {_field(alert, 'quantity')} · id {short_id(alert)}"
    )


def message_text(alerts: Sequence[Mapping[str, Any]], note: str | None = None) -> str:
    """One message for one alert or a burst of them (``plan_messages`` keeps bursts within
    the limit; a single alert is cut to it)."""
    head = [note] if note else []
    if len(alerts) == 1:
        return clip("\n".join([*head, one_alert(alerts[0])]))
    return "\n".join([*head, f"🔔 {len(alerts)} shoplake alerts", *map(compact_line, alerts)])


def plan_messages(
    alerts: Sequence[A], note: str | None = None, limit: int = TELEGRAM_LIMIT
) -> list[list[A]]:
    """Split a burst into groups whose message text fits in one chat message each."""
    groups: list[list[A]] = []
    current: list[A] = []
    for alert in alerts:
        if current and text_length(message_text([*current, alert], note)) > limit:
            groups.append(current)
            current = []
        current.append(alert)
    if current:
        groups.append(current)
    return groups
