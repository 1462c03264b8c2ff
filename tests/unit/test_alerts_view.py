"""The Alerts page's shaping of ledger rows: one row per alert, deliveries by sink."""

from __future__ import annotations

import datetime as dt

from jobs.domain.alerts_view import AlertsView, alert_rows, sink_totals

T0 = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)


def record(order_id: str, rule: str = "HIGH_VALUE_ORDER") -> dict[str, object]:
    return {
        "alert_type": rule,
        "severity": "high",
        "order_id": order_id,
        "customer_id": "C1",
        "total": "12000.00",
        "detected_at": "2026-12-05T08:00:01.000Z",
    }


def test_rows_are_grouped_per_alert_in_the_ledgers_order_with_sinks_sorted() -> None:
    rows = [
        ("b", record("O2"), T0, "webhook", "dead", 1, "HTTP 422"),
        ("b", record("O2"), T0, "console", "delivered", 1, None),
        ("a", record("O1", "NEGATIVE_PRICE"), T0, "console", "pending", 0, None),
        ("c", record("O3"), T0, None, None, None, None),  # no sink configured
    ]
    alerts = alert_rows(rows)
    assert [a.alert_id for a in alerts] == ["b", "a", "c"]
    b = alerts[0]
    assert [(d.sink, d.label) for d in b.deliveries] == [
        ("console", "delivered"),
        ("webhook", "dead-lettered"),
    ]
    assert b.deliveries[1].error == "HTTP 422"
    assert (alerts[1].rule, alerts[1].deliveries[0].label) == ("NEGATIVE_PRICE", "pending")
    assert alerts[2].deliveries == ()


def test_as_json_gives_plain_values_and_falls_back_to_the_recording_time() -> None:
    bare = {"alert_type": "INVALID_QUANTITY", "order_id": 7, "total": None}
    (row,) = alert_rows([("x", bare, T0, "lake", "sending", 2, None)])
    body = row.as_json()
    assert body["order_id"] == "7" and body["total"] == "" and body["customer_id"] == ""
    assert body["detected_at"] == T0.isoformat()
    assert body["deliveries"] == [
        {"sink": "lake", "state": "sending", "label": "sending", "error": ""}
    ]


def test_sink_totals_are_typed_and_sorted() -> None:
    totals = sink_totals(
        {
            "webhook": {
                "delivered": 3,
                "pending": 1,
                "sending": 0,
                "dead": 2,
                "oldest_pending": T0,
            },
            "console": {"delivered": 5, "pending": 0, "sending": 1, "dead": 0},
        }
    )
    assert [(t.sink, t.delivered, t.pending, t.sending, t.dead) for t in totals] == [
        ("console", 5, 0, 1, 0),
        ("webhook", 3, 1, 0, 2),
    ]
    assert AlertsView(alerts=[], sinks=[], rules=[], total=0).empty
    assert not AlertsView(alerts=[], sinks=totals, rules=[], total=0).empty
