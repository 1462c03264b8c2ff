"""Debezium -> Kafka on the real services: the envelope, exact decimals, the slot's removal."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg
import pytest

from jobs.adapters import debezium, kafka_io
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings
from tests.support.kafka_read import wait_for_messages

pytestmark = pytest.mark.integration

# edge values of the alert rules: around the thresholds, zero, NULL, non-ASCII text
ROWS = [
    ("o-neg", "-0.01", 1, "-0.01", "Pen"),
    ("o-10000", "10000.00", 1, "10000.00", "Laptop"),
    ("o-10001", "10000.01", 1, "10000.01", "Laptop Pro"),
    ("o-q0", "5.00", 0, "0.00", "Mug"),
    ("o-q51", "2.50", 51, "127.50", None),
    ("o-uni", "12.34", 2, "24.68", "Café ☕ 東京 — Ünïcödé"),
]
DECIMAL = re.compile(r"^-?\d+\.\d{2}$")
COLUMNS = "order_id, price::text, quantity, total::text, product_name, status, order_date"


def _insert_and_update(settings: Settings) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for order_id, price, quantity, total, name in ROWS:
            conn.execute(
                "INSERT INTO orders (order_id, order_date, customer_id, product_name, price, "
                "quantity, total, status) VALUES (%s, now(), 'c-1', %s, %s, %s, %s, 'pending')",
                (order_id, name, price, quantity, total),
            )
        conn.execute(
            "UPDATE orders SET quantity = 2, total = 10.00, status = 'completed' "
            "WHERE order_id = 'o-q0'"
        )


def _source_rows(settings: Settings) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM orders").fetchall()
    return {r[0]: r for r in rows}


def _events(settings: Settings, count: int) -> list[Any]:
    consumer = kafka_io.consumer(settings, settings.cdc_topic, group=None)
    try:
        return wait_for_messages(
            consumer, lambda got: len(got) >= count, timeout_s=60, what=settings.cdc_topic
        )
    finally:
        consumer.close()


def test_envelope_carries_exact_decimals_and_the_before_row(cdc_settings: Settings) -> None:
    _insert_and_update(cdc_settings)
    messages = _events(cdc_settings, len(ROWS) + 1)
    events = [m.value for m in messages]
    assert [e["op"] for e in events] == ["c"] * len(ROWS) + ["u"]

    source = _source_rows(cdc_settings)
    dbname = psycopg.conninfo.conninfo_to_dict(cdc_settings.dsn)["dbname"]
    for message, event, (order_id, price, quantity, total, name) in zip(
        messages, events, ROWS, strict=False
    ):
        assert message.key == f'{{"order_id":"{order_id}"}}'
        assert event["before"] is None
        after = event["after"]
        # exact strings, equal to PostgreSQL's own text of the NUMERIC (never base64)
        assert (after["price"], after["total"]) == (price, total)
        assert DECIMAL.match(after["price"]) and DECIMAL.match(after["total"])
        assert after["quantity"] == quantity
        assert after["product_name"] == name
        # timestamptz: an ISO 8601 string of the same instant
        stamp = dt.datetime.fromisoformat(after["order_date"].replace("Z", "+00:00"))
        assert stamp == source[order_id][6]
        src = event["source"]
        assert (src["db"], src["schema"], src["table"]) == (dbname, "public", "orders")
        assert isinstance(src["lsn"], int) and src["lsn"] > 0
        assert isinstance(src["ts_ms"], int) and event["ts_ms"] >= src["ts_ms"]

    update = events[-1]
    assert update["before"]["quantity"] == 0 and update["before"]["status"] == "pending"
    assert update["after"]["quantity"] == 2 and update["after"]["status"] == "completed"
    assert (update["before"]["total"], update["after"]["total"]) == ("0.00", "10.00")
    assert update["source"]["lsn"] > events[-2]["source"]["lsn"]
    now = source["o-q0"]
    assert (update["after"]["price"], update["after"]["total"]) == (now[1], now[3])


def _slots(settings: Settings) -> set[str]:
    with psycopg.connect(settings.dsn) as conn:
        return {r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots")}


def _publications(settings: Settings) -> set[str]:
    with psycopg.connect(settings.dsn) as conn:
        return {r[0] for r in conn.execute("SELECT pubname FROM pg_publication")}


def test_register_is_idempotent_and_unregister_drops_the_slot(cdc_settings: Settings) -> None:
    slot = debezium.slot_name(cdc_settings)
    assert slot in _slots(cdc_settings)
    assert debezium.publication_name(cdc_settings) in _publications(cdc_settings)

    again = debezium.register(cdc_settings)  # the same config PUT twice: still one connector
    assert again["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in again["tasks"]] == ["RUNNING"]

    removed = debezium.unregister(cdc_settings)
    assert removed == [
        f"connector {debezium.connector_name(cdc_settings)}",
        f"slot {slot}",
        f"publication {debezium.publication_name(cdc_settings)}",
    ]
    assert slot not in _slots(cdc_settings)
    assert debezium.publication_name(cdc_settings) not in _publications(cdc_settings)
    assert debezium.status(cdc_settings) is None
    assert debezium.unregister(cdc_settings) == []  # nothing left: a second call is a no-op


def test_register_without_orders_table_is_one_clear_error(
    pg_settings: Settings, streaming_settings: Settings
) -> None:
    settings = streaming_settings.model_copy(
        update={"source_dsn": pg_settings.dsn, "cdc_topic_prefix": "tnotable"}
    )
    with pytest.raises(ServiceUnavailable, match=r"no table public\.orders"):
        debezium.register(settings)
    assert debezium.status(settings) is None  # nothing half-registered
