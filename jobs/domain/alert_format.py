"""Human-readable alert text for chat messages (Telegram plain text, no markup to escape).

Values come from the orders table, so they may be anything: each is put on one line (control
characters and line breaks become spaces, so a product name cannot forge a line of its own),
cut to ``FIELD_MAX`` characters, and every message fits Telegram's 4,096 characters (counted in
UTF-16 code units, as Telegram does, so emoji count twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from jobs.domain.alert import Alert
from jobs.domain.digest import DIGEST_TYPE

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


def short_id(alert: Alert) -> str:
    return clean(alert.alert_id or "")[:12]


def _shown(value: Any) -> str:
    return clean(value) if value not in (None, "") else "-"


def one_alert(alert: Alert) -> str:
    """The full text of a single alert: rule, order, customer, amounts, reason, id (a daily
    digest is its own text)."""
    if alert.alert_type == DIGEST_TYPE:
        return clip(str(alert.message or ""))
    icon = _ICONS.get(str(alert.severity), "🔔")
    at = alert.source_ts or alert.detected_at
    return "\n".join(
        [
            f"{icon} {_shown(alert.alert_type)} ({_shown(alert.severity)})",
            f"Order {_shown(alert.order_id)} · customer {_shown(alert.customer_id)}",
            f"Product: {_shown(alert.product_name)}",
            f"Total {money(alert.total)} · qty {_shown(alert.quantity)}"
            f" · price {money(alert.price)}",
            clean(alert.message or "", 4 * FIELD_MAX),
            f"at {clean(at)} · id {short_id(alert)}",
        ]
    )


def compact_line(alert: Alert) -> str:
    """One line per alert, for bursts batched into one message."""
    icon = _ICONS.get(str(alert.severity), "🔔")
    return (
        f"{icon} {_shown(alert.alert_type)} · order {_shown(alert.order_id)}"
        f" · cust {_shown(alert.customer_id)} · total {money(alert.total)}"
        f" · qty {_shown(alert.quantity)} · id {short_id(alert)}"
    )


def message_text(alerts: Sequence[Alert], note: str | None = None) -> str:
    """One message for one alert or a burst of them (``plan_messages`` keeps bursts within
    the limit; a single alert is cut to it)."""
    head = [note] if note else []
    if len(alerts) == 1:
        return clip("\n".join([*head, one_alert(alerts[0])]))
    return "\n".join([*head, f"🔔 {len(alerts)} shoplake alerts", *map(compact_line, alerts)])


def plan_messages(
    alerts: Sequence[Alert], note: str | None = None, limit: int = TELEGRAM_LIMIT
) -> list[list[Alert]]:
    """Split a burst into groups whose message text fits in one chat message each (a daily
    digest is always a message of its own)."""
    groups: list[list[Alert]] = []
    current: list[Alert] = []
    for alert in alerts:
        if alert.alert_type == DIGEST_TYPE:  # in order: what came before goes first
            groups += [current, [alert]] if current else [[alert]]
            current = []
            continue
        if current and text_length(message_text([*current, alert], note)) > limit:
            groups.append(current)
            current = []
        current.append(alert)
    if current:
        groups.append(current)
    return groups
