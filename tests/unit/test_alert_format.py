"""Telegram message text: readable single alerts, batched bursts within the size limit."""

from __future__ import annotations

from jobs.domain.alert import Alert
from jobs.domain.alert_format import TELEGRAM_LIMIT, message_text, money, plan_messages


def alert(i: int = 1, **kw):
    return Alert.from_record(
        {
            "alert_id": f"{i:032x}",
            "alert_type": "HIGH_VALUE_ORDER",
            "severity": "high",
            "order_id": f"ORD-{i}",
            "customer_id": "CUST-9",
            "product_name": "Laptop Pro",
            "total": "12500.00",
            "quantity": 5,
            "price": "2500.00",
            "message": "Order total 12500.00 is above 10000",
            "source_ts": "2026-01-02T03:04:05+00:00",
            "detected_at": "x",
        }
        | kw
    )


def test_single_alert_is_readable():
    text = message_text([alert()])
    assert text.splitlines() == [
        "🚨 HIGH_VALUE_ORDER (high)",
        "Order ORD-1 · customer CUST-9",
        "Product: Laptop Pro",
        "Total 12,500.00 · qty 5 · price 2,500.00",
        "Order total 12500.00 is above 10000",
        "at 2026-01-02T03:04:05+00:00 · id 000000000000",
    ]


def test_missing_and_odd_values_render():
    text = message_text([alert(customer_id=None, total=None, price="abc", quantity=None)])
    assert "customer -" in text and "Total - · qty - · price abc" in text
    assert money("-0.5") == "-0.50"


def test_a_burst_becomes_few_messages_each_within_the_limit():
    burst = [alert(i) for i in range(300)]
    groups = plan_messages(burst, note="note")
    assert sum(len(g) for g in groups) == 300 and 1 < len(groups) < 30
    assert [a["order_id"] for g in groups for a in g] == [a["order_id"] for a in burst]
    for g in groups:
        text = message_text(g, "note")
        assert len(text) <= TELEGRAM_LIMIT
        assert text.startswith("note\n🔔") and all(a["order_id"] in text for a in g)


def test_any_single_alert_fits_telegram_and_stays_on_its_lines():
    from jobs.domain.alert_format import text_length

    huge = alert(
        product_name="Lamp\n🛑 forged line\x00" + "😀" * 5000,
        customer_id="c" * 9000,
        message="m\r\n" * 3000,
    )
    text = message_text([huge], note="↻ note")
    assert text_length(text) <= TELEGRAM_LIMIT
    assert len(text.splitlines()) == 7  # the note and the six lines of one alert
    assert "\n🛑 forged line" not in text and "\x00" not in text
    groups = plan_messages([huge] * 5 + [alert(2)])
    assert all(text_length(message_text(g)) <= TELEGRAM_LIMIT for g in groups)
