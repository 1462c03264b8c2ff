"""The whole full-profile path against the lite engine, on real PostgreSQL, Kafka and Flink.

PostgreSQL -> Debezium (Kafka Connect) -> ``<prefix>.public.orders`` -> the Flink alert job
-> ``<alerts topic>`` -> delivery, beside the lite engine reading its own pgoutput slot of
the same database. Both see the same WAL positions, so their alert ids must agree too.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from jobs.adapters import kafka_io
from jobs.alerts import flink_job as flink_alerts
from jobs.settings import Settings
from lite.services import manager, proc
from lite.services.flink.service import runtime
from tests.support.alert_topic import delivering
from tests.support.alerts_runner import MemorySink, running_alerts, wait_for

pytestmark = pytest.mark.integration
# consumer-facing timing fields: each engine's own clock, not part of the alert's identity
CLOCK_FIELDS = ("detected_at", "delivered_at")


@pytest.fixture
def pipeline(cdc_settings: Settings, flink_settings: Settings) -> Iterator[Settings]:
    """A fresh database with Debezium streaming it and the Flink job on its topic."""
    settings = cdc_settings.model_copy(
        update={
            "flink_port": flink_settings.flink_port,
            "flink_rpc_port": flink_settings.flink_rpc_port,
            "alerts_topic": f"alerts-{cdc_settings.cdc_topic_prefix}",
        }
    )
    job, submitted = flink_alerts.submit(settings, runtime(settings))
    assert submitted and job.state == "RUNNING"
    try:
        yield settings
    finally:
        flink_alerts.cancel(settings, runtime(settings))
        kafka_io.delete_topics(settings, [settings.alerts_topic])


def insert(conn: psycopg.Connection, order_id: str, **values: Any) -> None:
    row = {
        "order_id": order_id,
        "customer_id": "C-1",
        "product_name": "Lamp",
        "price": "10.00",
        "quantity": 1,
        "total": "10.00",
        "status": "pending",
        **values,
    }
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(f"INSERT INTO orders ({cols}) VALUES ({marks})", list(row.values()))


def change_stream(conn: psycopg.Connection) -> None:
    """Inserts, updates and a delete with the rules' edge values, some in one transaction."""
    insert(conn, "E-TOTAL-EQ", total="10000.00", price="10000.00")  # not above: no alert
    insert(conn, "E-TOTAL-UP", total="10000.01", price="10000.01")  # HIGH_VALUE
    insert(conn, "E-PRICE", price="-0.01", total="-0.01")  # NEGATIVE_PRICE
    insert(conn, "E-QTY-0", quantity=0, total="0.00")  # INVALID_QUANTITY
    insert(conn, "E-QTY-50", quantity=50, total="500.00")  # not above: no alert
    insert(conn, "E-QTY-51", quantity=51, total="510.00")  # SUSPICIOUS
    insert(conn, "E-TWO", quantity=60, total="20000.00", price="333.33")  # two rules
    insert(conn, "E-NULL", product_name=None, price="-5.00", total="-5.00")
    insert(conn, "E-UNICODE", product_name='Café ☕ 東京 "quoted"', quantity=-3, total="-30.00")
    with conn.transaction():  # several changes in one transaction
        insert(conn, "E-TX-1", quantity=70, total="700.00")
        insert(conn, "E-TX-2", price="-1.50", total="-1.50")
        conn.execute("UPDATE orders SET quantity = 55 WHERE order_id = 'E-QTY-50'")  # newly
    conn.execute("UPDATE orders SET quantity = 56 WHERE order_id = 'E-QTY-51'")  # already broken
    conn.execute("UPDATE orders SET status = 'shipped' WHERE order_id = 'E-TWO'")  # no change
    conn.execute("UPDATE orders SET total = '15000.50' WHERE order_id = 'E-TOTAL-EQ'")  # newly
    conn.execute("DELETE FROM orders WHERE order_id = 'E-PRICE'")  # deletes raise nothing


def streaming(settings: Settings, slot: str) -> bool:
    """Is a walsender streaming from this slot (so new commits reach its reader)?"""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_activity a"
            " ON a.pid = s.active_pid WHERE s.slot_name = %s AND a.backend_type = 'walsender'",
            (slot,),
        ).fetchone()
    return bool(row and row[0])


def without_clocks(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if k not in CLOCK_FIELDS}


def test_debezium_and_flink_give_the_lite_engines_alerts(pipeline: Settings) -> None:
    """One stream of changes through both engines: the same alert records, ids included."""
    lite = MemorySink()
    slot = f"lite_{pipeline.cdc_topic_prefix}"
    consumer = kafka_io.consumer(pipeline, pipeline.alerts_topic, None)
    try:
        with running_alerts(pipeline, [lite], slot=slot):
            # running_alerts waits for any streaming slot of the database, and Debezium's
            # already streams: wait for the lite engine's own, or it misses the first changes
            wait_for(lambda: streaming(pipeline, slot), 30, "the lite engine's slot")
            with psycopg.connect(pipeline.dsn, autocommit=True) as conn:
                change_stream(conn)
                insert(conn, "E-END", quantity=999, total="9990.00")  # the last alert
            end = "E-END"
            wait_for(
                lambda: any(r["order_id"] == end for r in lite.records()),
                60,
                "the lite engine's last alert",
            )
        flink: dict[str, dict[str, Any]] = {}

        def flink_has_end() -> bool:
            for records in consumer.poll(timeout_ms=200).values():
                for rec in records:
                    alert = without_clocks(rec.value)
                    # an at-least-once sink may repeat a record; a repeat must be identical
                    assert flink.setdefault(alert["alert_id"], alert) == alert
            return any(a["order_id"] == end for a in flink.values())

        wait_for(flink_has_end, 120, "the Flink job's last alert", interval=0.1)
    finally:
        kafka_io.close_quietly(consumer)

    lite_alerts = {a["alert_id"]: without_clocks(a) for a in lite.records()}
    assert len(lite_alerts) == len(lite.records())  # the lite engine delivered each once
    # the edge cases above: 13 alerts, and the end marker's
    kinds = sorted((a["order_id"], a["alert_type"]) for a in lite_alerts.values())
    assert kinds == [
        ("E-END", "SUSPICIOUS_QUANTITY"),
        ("E-NULL", "NEGATIVE_PRICE"),
        ("E-PRICE", "NEGATIVE_PRICE"),
        ("E-QTY-0", "INVALID_QUANTITY"),
        ("E-QTY-50", "SUSPICIOUS_QUANTITY"),
        ("E-QTY-51", "SUSPICIOUS_QUANTITY"),
        ("E-TOTAL-EQ", "HIGH_VALUE_ORDER"),
        ("E-TOTAL-UP", "HIGH_VALUE_ORDER"),
        ("E-TWO", "HIGH_VALUE_ORDER"),
        ("E-TWO", "SUSPICIOUS_QUANTITY"),
        ("E-TX-1", "SUSPICIOUS_QUANTITY"),
        ("E-TX-2", "NEGATIVE_PRICE"),
        ("E-UNICODE", "INVALID_QUANTITY"),
    ]
    assert flink == lite_alerts
    # exact amounts as strings, the same on both sides
    by_order = {a["order_id"]: a for a in flink.values() if a["alert_type"] != "HIGH_VALUE_ORDER"}
    assert by_order["E-PRICE"]["price"] == "-0.01"
    assert by_order["E-UNICODE"]["product_name"] == 'Café ☕ 東京 "quoted"'
    assert by_order["E-NULL"]["product_name"] is None


class Orders(threading.Thread):
    """Inserts alerting orders (quantity 0) at a steady rate until told to stop."""

    def __init__(self, settings: Settings, rate: float) -> None:
        super().__init__(daemon=True)
        self.settings, self.rate = settings, rate
        self.halt = threading.Event()
        self.count = 0

    def run(self) -> None:
        with psycopg.connect(self.settings.dsn, autocommit=True) as conn:
            while not self.halt.wait(1 / self.rate):
                insert(conn, f"S{self.count:06d}", quantity=0, total="0.00")
                self.count += 1


def _kill(settings: Settings, name: str) -> int:
    (svc,) = manager.services(settings, [name])
    pid = svc.pid()
    assert pid is not None, f"{name} is not running"
    proc.terminate(pid, signal.SIGKILL, 10)
    return pid


def test_the_kafka_path_survives_losing_the_flink_job(pipeline: Settings) -> None:
    """SIGKILL the TaskManager, later the whole Flink cluster, while orders keep coming:
    every alert reaches the sink exactly once."""
    sink = MemorySink()
    orders = Orders(pipeline, rate=20)
    with delivering(pipeline, [sink], group=f"delivery-{pipeline.cdc_topic_prefix}"):
        orders.start()
        try:
            wait_for(lambda: len(sink.records()) >= 20, 90, "the first alerts delivered")
            # 1. the TaskManager dies: the job fails over from its last checkpoint
            _kill(pipeline, "flink-taskmanager")
            time.sleep(2)  # orders keep arriving while no TaskManager runs
            manager.start(pipeline, ["flink-taskmanager"])
            seen = len(sink.records())
            wait_for(lambda: len(sink.records()) > seen + 20, 120, "alerts after the TM restart")
            # 2. the whole cluster dies: a new job resumes from the committed offsets
            _kill(pipeline, "flink-taskmanager")
            _kill(pipeline, "flink-jobmanager")
            time.sleep(2)
            manager.start(pipeline, ["flink-jobmanager", "flink-taskmanager"])
            job, submitted = flink_alerts.submit(pipeline, runtime(pipeline))
            assert submitted and job.state == "RUNNING"
            seen = len(sink.records())
            wait_for(lambda: len(sink.records()) > seen + 20, 120, "alerts after the resubmit")
        finally:
            orders.halt.set()
            orders.join(10)
        total = orders.count
        wait_for(lambda: len(sink.records()) >= total, 120, f"all {total} alerts delivered")
        time.sleep(3)  # a late duplicate would show now
    delivered = [r["order_id"] for r in sink.records()]
    assert sorted(delivered) == [f"S{i:06d}" for i in range(total)]  # none lost, none twice
