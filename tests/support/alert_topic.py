"""Alert records on a Kafka topic, as the Flink job writes them (for the delivery tests).

The records are built by the lite engine's own ``alerts_for_change`` from Debezium envelopes,
so they are exactly the contract's records; the Flink sink is at-least-once, so the helpers
can also send some of them twice.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import KafkaProducer

from jobs import alert_engines as engines
from jobs.adapters import kafka_io
from jobs.alerts.sinks import Sink
from jobs.domain.change_events import envelope, to_json
from jobs.domain.rules import alerts_for_change
from jobs.settings import Settings
from tests.support.alerts_runner import in_background

FIRST_LSN = 10_000_000


def order_id(i: int) -> str:
    return f"K{i:05d}"


def alert_records(settings: Settings, first: int, count: int) -> list[dict[str, Any]]:
    """One alert per order ``K<first>`` .. ``K<first+count-1>`` (quantity 0: INVALID_QUANTITY)."""
    params, now = settings.alert_params(), dt.datetime.now(dt.UTC)
    records: list[dict[str, Any]] = []
    for i in range(first, first + count):
        row = {
            "order_id": order_id(i),
            "customer_id": f"C{i % 97}",
            "product_name": "Lamp",
            "price": "5.00",
            "quantity": 0,
            "total": "0.00",
            "status": "pending",
        }
        event = envelope(
            "c",
            None,
            row,
            lsn=FIRST_LSN + i * 8,
            tx_id=1000 + i,
            commit_ts_ms=int(now.timestamp() * 1000),
            db="shop",
        )
        records.extend(alerts_for_change(event, params, now))
    return records


def producer(settings: Settings) -> KafkaProducer:
    """A producer of raw bytes (the tests also send values that are not alerts)."""
    return kafka_io.producer(settings, value_serializer=lambda v: v)


def send(
    prod: KafkaProducer,
    topic: str,
    records: Iterable[dict[str, Any]],
    rng: random.Random | None = None,
    duplicates: float = 0.0,
) -> int:
    """Send the records keyed by alert_id, a share of them twice; returns the messages sent."""
    sent = 0
    for record in records:
        copies = 2 if rng is not None and rng.random() < duplicates else 1
        for _ in range(copies):
            prod.send(topic, key=record["alert_id"], value=to_json(record).encode())
            sent += 1
    prod.flush(timeout=30)
    return sent


def send_raw(
    prod: KafkaProducer, topic: str, values: Sequence[bytes | None]
) -> list[tuple[int, int]]:
    """Send values as they are, in one partition; returns each one's (partition, offset)."""
    futures = [prod.send(topic, key="raw", value=v) for v in values]
    prod.flush(timeout=30)
    return [(meta.partition, meta.offset) for meta in (f.get(timeout=30) for f in futures)]


@contextmanager
def delivering(settings: Settings, sinks: list[Sink], **kw: Any) -> Iterator[threading.Event]:
    """Run the Kafka delivery in a thread; stop it (and surface its errors) on exit."""
    with in_background(lambda stop: engines.run_flink(settings, stop, sinks, **kw)) as stop:
        yield stop
