"""Alert delivery from the Flink job's topic (``shoplake alerts run --engine flink``) on the
real Kafka broker and PostgreSQL: each alert reaches each sink once, through duplicates sent by
an at-least-once producer, malformed messages and kill -9 of the delivery process."""

from __future__ import annotations

import collections
import random
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pyarrow.parquet as pq
import pytest
from kafka.errors import KafkaConnectionError
from kafka.structs import TopicPartition
from pydantic import SecretStr

from jobs import alert_engines as alerts
from jobs.adapters import kafka_io
from jobs.alerts.sinks.telegram import IN_DOUBT_NOTE
from jobs.domain.change_events import to_json
from jobs.settings import Settings
from tests.support.alert_topic import (
    alert_records,
    delivering,
    order_id,
    producer,
    send,
    send_raw,
)
from tests.support.alerts_process import rss_mb, start_alerts
from tests.support.alerts_runner import MemorySink, wait_for
from tests.support.platform_up import free_ports
from tests.support.telegram_standin import TelegramStandIn
from tests.support.webhook_receiver import WebhookReceiver

TOKEN = "777:delivery-test-token"
ORDER = re.compile(r"K\d{5}")


@pytest.fixture
def delivery(pg_settings: Settings, streaming_settings: Settings, tmp_path) -> Iterator[Settings]:
    """A fresh ledger database, its own two-partition alerts topic and a folder lake."""
    topic = f"alerts-{uuid.uuid4().hex[:12]}"
    settings = streaming_settings.model_copy(
        update={
            "source_dsn": pg_settings.dsn,
            "alerts_topic": topic,
            "lake_uri": str(tmp_path / "lake"),
        }
    )
    kafka_io.ensure_topic(settings, topic, partitions=2)
    yield settings
    kafka_io.delete_topics(settings, [topic])


def group() -> str:
    """A consumer group of its own: tests of parallel sessions never fence each other."""
    return f"delivery-{uuid.uuid4().hex[:8]}"


def with_sinks(settings: Settings, api: TelegramStandIn, hook: WebhookReceiver) -> Settings:
    return settings.model_copy(
        update={
            "telegram_bot_token": SecretStr(TOKEN),
            "telegram_chat_id": "1001",
            "telegram_api_url": api.url,
            "alert_webhook_url": hook.url,
        }
    )


def open_deliveries(settings: Settings) -> int:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM shoplake_alerts.alert_deliveries WHERE state <> 'delivered'"
        ).fetchone()
    return row[0] if row else -1


def ledger_count(settings: Settings, table: str) -> int:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM shoplake_alerts.{table}").fetchone()
    return row[0] if row else -1


def test_each_alert_reaches_telegram_and_the_webhook_once(delivery: Settings) -> None:
    records = alert_records(delivery, 0, 300)
    expected = {r["alert_id"]: r for r in records}
    rng = random.Random(3)
    with TelegramStandIn(TOKEN) as api, WebhookReceiver() as hook:
        settings = with_sinks(delivery, api, hook)
        sinks = alerts.build_sinks(settings, threading.Event(), lake=False)
        prod = producer(settings)
        try:
            with delivering(settings, sinks, group=group()):
                sent = send(prod, settings.alerts_topic, records[:200], rng, duplicates=0.3)
                # an overlapping replay, as the Flink job sends after a restart from a checkpoint
                sent += send(prod, settings.alerts_topic, records[150:], rng, duplicates=0.3)
                wait_for(
                    lambda: (
                        len(set(hook.keys())) >= len(records)
                        and len(set(ORDER.findall("\n".join(api.texts())))) >= len(records)
                        and open_deliveries(settings) == 0
                    ),
                    60,
                    "every alert at both sinks",
                )
        finally:
            kafka_io.close_quietly(prod)
    assert sent > len(records) + 50  # the duplicates did reach the topic
    keys = collections.Counter(hook.keys())
    assert set(keys) == set(expected) and max(keys.values()) == 1
    assert {h.key: h.body for h in hook.hooks()} == expected  # the records, unchanged
    seen = collections.Counter(ORDER.findall("\n".join(api.texts())))
    assert set(seen) == {order_id(i) for i in range(300)} and max(seen.values()) == 1
    assert ledger_count(settings, "alerts") == len(records)
    assert ledger_count(settings, "rejected_alerts") == 0


def test_malformed_messages_are_quarantined_and_the_stream_goes_on(
    delivery: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    good = alert_records(delivery, 0, 4)
    missing = dict(good[0])
    del missing["source_lsn"]
    bad = {
        b"not json at all": "not JSON",
        to_json(missing).encode(): "missing field(s): source_lsn",
        b"\xff\xfe\x00": "not UTF-8",
        b"[1, 2]": "not a JSON object",
        to_json(good[1] | {"source_lsn": "12x"}).encode(): "source_lsn is not an integer",
        # valid records the ledger cannot hold: found by storing the batch alert by alert
        to_json(good[1] | {"product_name": "nul\x00"}).encode(): "not storable in the ledger",
        to_json(good[1] | {"source_lsn": 2**63}).encode(): "not storable in the ledger",
    }
    values: list[bytes | None] = [to_json(good[0]).encode(), *bad, None]
    values.append(to_json(good[2]).encode())
    reasons = [*bad.values(), "empty message"]
    sink = MemorySink()
    prod = producer(delivery)
    name = group()
    try:
        with delivering(delivery, [sink], group=name):
            positions = send_raw(prod, delivery.alerts_topic, values)
            wait_for(lambda: len(sink.records()) >= 2, 30, "the alerts around the bad ones")
            wait_for(
                lambda: ledger_count(delivery, "rejected_alerts") >= len(reasons),
                30,
                "the quarantined messages",
            )
        # a restart commits past the quarantined messages: only the new alert comes
        after = MemorySink()
        with delivering(delivery, [after], group=name):
            send(prod, delivery.alerts_topic, [good[3]])
            wait_for(lambda: after.records(), 30, "the alert sent after the restart")
    finally:
        kafka_io.close_quietly(prod)
    assert [r["order_id"] for r in sink.records()] == [order_id(0), order_id(2)]
    assert [r["order_id"] for r in after.records()] == [order_id(3)]
    with psycopg.connect(delivery.dsn) as conn:
        rows = conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, reason, raw_value"
            " FROM shoplake_alerts.rejected_alerts ORDER BY kafka_offset"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == positions[1:-1]
    assert {r[0] for r in rows} == {delivery.alerts_topic}
    for (_t, _p, _o, reason, raw), want, value in zip(rows, reasons, values[1:-1], strict=True):
        assert reason.startswith(want), reason
        assert (bytes(raw) if raw is not None else None) == value
    lines = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(lines) == len(reasons) and all("\n" not in line for line in lines)


def test_kill_9_mid_stream_loses_and_repeats_nothing(delivery: Settings, tmp_path) -> None:
    """SIGKILL the delivery process 5 times while 1,000 alerts (some sent twice) arrive."""
    total, log = 1000, tmp_path / "delivery.log"
    records = alert_records(delivery, 0, total)
    rng, kills, produced = random.Random(11), 0, threading.Event()
    args = ["--engine", "flink", "--group", group()]
    rss: list[float] = []

    def load(settings: Settings) -> None:
        prod, feed = producer(settings), random.Random(5)
        try:
            for start in range(0, total, 50):
                send(prod, settings.alerts_topic, records[start : start + 50], feed, 0.2)
                time.sleep(feed.uniform(0, 0.05))  # a live stream, not one burst
        finally:
            kafka_io.close_quietly(prod)
            produced.set()

    with TelegramStandIn(TOKEN) as api, WebhookReceiver() as hook:
        settings = with_sinks(delivery, api, hook)
        proc = start_alerts(settings, args, log)
        try:
            wait_for(lambda: "consuming" in log.read_text(), 60, "the first start")
            threading.Thread(target=load, args=(settings,), daemon=True).start()
            while kills < 5:
                time.sleep(rng.uniform(0.3, 2.0))
                rss.append(rss_mb(proc))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
                proc = start_alerts(settings, args, log)
            wait_for(produced.is_set, 120, "the producer to finish")
            wait_for(
                lambda: (
                    len(set(hook.keys())) >= total
                    and len(set(ORDER.findall("\n".join(api.texts())))) >= total
                    and open_deliveries(settings) == 0
                ),
                180,
                "every alert delivered",
            )
            rss.append(rss_mb(proc))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        texts, keys = api.texts(), collections.Counter(hook.keys())
    assert code == 0, log.read_text()[-2000:]
    assert "alerts stopped" in log.read_text()

    expected = {r["alert_id"] for r in records}
    # the webhook: a resend is possible only for the one POST in flight at a kill, and it
    # carries the same Idempotency-Key, so the receiver can drop it
    assert set(keys) == expected
    assert sum(n - 1 for n in keys.values()) <= kills
    # Telegram: a repeat only for a batch in flight at a kill, and its text says so
    seen = collections.Counter(o for t in texts for o in ORDER.findall(t))
    assert set(seen) == {order_id(i) for i in range(total)}
    resent = {o for t in texts if t.startswith(IN_DOUBT_NOTE) for o in ORDER.findall(t)}
    repeated = {o for o, n in seen.items() if n > 1}
    assert repeated <= resent, f"unannounced repeats: {sorted(repeated - resent)}"
    # the lake and the ledger: exactly once
    parts = list((tmp_path / "lake" / "gold" / "alerts").rglob("*.parquet"))
    ids = [i for p in parts for i in pq.read_table(p).column("alert_id").to_pylist()]
    assert len(ids) == total and set(ids) == expected
    assert ledger_count(settings, "alerts") == total
    print(
        f"kills={kills} telegram_messages={len(texts)} telegram_repeats={len(repeated)}"
        f" webhook_resends={sum(n - 1 for n in keys.values())} rss_mb={max(rss):.0f}"
    )


def test_a_wrong_bootstrap_is_one_clear_line(delivery: Settings, tmp_path) -> None:
    settings = delivery.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    log = tmp_path / "wrong.log"
    proc = start_alerts(settings, ["--engine", "flink", "--no-lake"], log)
    assert proc.wait(60) == 3
    errors = [line for line in log.read_text().splitlines() if line.startswith("error:")]
    assert errors == [
        "error: alerts: no Kafka broker answers at 127.0.0.1:1"
        " (waited 5 s; set SHOPLAKE_KAFKA_BOOTSTRAP)"
    ]
    # and no noise around it: kafka-python's own reconnect lines are kept out of the log
    assert not [line for line in log.read_text().splitlines() if " kafka." in line]


@pytest.fixture
def private_broker(pg_settings: Settings, tmp_path) -> Iterator[Settings]:
    """A broker of this test alone (it gets stopped mid-test): the shared one stays up."""
    from lite.services import manager

    # ports free now, not fixed ones: a fixed port in the ephemeral range can be held by some
    # client's outgoing connection at that moment ("Address already in use", seen in CI)
    port, controller_port = free_ports(2)
    settings = pg_settings.model_copy(
        update={
            "profile": "full",
            "data_dir": tmp_path / "private",
            "kafka_bootstrap": None,
            "kafka_port": port,
            "kafka_controller_port": controller_port,
            "alerts_topic": f"alerts-{uuid.uuid4().hex[:12]}",
            "lake_uri": str(tmp_path / "lake"),
        }
    )
    manager.start(settings, ["kafka"])
    try:
        yield settings
    finally:
        manager.stop(settings, ["kafka"])


def test_a_lost_broker_is_retried_with_a_log_line_and_the_stream_resumes(
    private_broker: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.alerts.sources import flink_topic as alerts_kafka
    from lite.services import manager

    settings, sink = private_broker, MemorySink()
    # notice the loss within seconds (production: after 5 s idle, then a 10 s request timeout)
    monkeypatch.setattr(alerts_kafka, "PROBE_AFTER_IDLE_S", 0.5)
    monkeypatch.setattr(alerts_kafka, "COMMIT_TIMEOUT_MS", 2000)
    monkeypatch.setattr(alerts_kafka, "BOOTSTRAP_TIMEOUT_MS", 1000)
    kafka_io.ensure_topic(settings, settings.alerts_topic)
    records = alert_records(settings, 0, 6)
    lost = f"Kafka at {settings.kafka_bootstrap_servers} lost"
    with delivering(settings, [sink], group=group(), retry_every=0.5):
        prod = producer(settings)
        send(prod, settings.alerts_topic, records[:3])
        kafka_io.close_quietly(prod)
        wait_for(lambda: len(sink.records()) >= 3, 30, "the alerts before the loss")
        manager.stop(settings, ["kafka"])
        wait_for(lambda: lost in caplog.text, 30, "the delivery to notice the loss")
        manager.start(settings, ["kafka"])
        prod = producer(settings)
        send(prod, settings.alerts_topic, records[3:])
        kafka_io.close_quietly(prod)
        wait_for(lambda: len(sink.records()) >= 6, 60, "the alerts after the broker came back")
    assert [r["order_id"] for r in sink.records()] == [order_id(i) for i in range(6)]
    retries = [r for r in caplog.records if lost in r.getMessage()]
    assert retries and all(r.levelname == "WARNING" for r in retries)


def first_consumer_is(stand_in: object, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The delivery's first consumer is ``stand_in``, the later ones real; what it opened."""
    from jobs.alerts.sources import flink_topic as alerts_kafka

    real = alerts_kafka.open_consumer
    opened: list[object] = []

    def open_consumer(settings: Settings, group: str) -> object:
        consumer = stand_in if not opened else real(settings, group)
        opened.append(consumer)
        return consumer

    monkeypatch.setattr(alerts_kafka, "open_consumer", open_consumer)
    return opened


class StuckConsumer:
    """A consumer whose poll() never returns, as kafka-python 3.0.12's sometimes does, until
    close() fails its wait (what the library's own close does to its pending waits)."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def poll(self, **_: object) -> dict:
        self.closed.wait(120)
        raise KafkaConnectionError("Event loop stopped")

    def close(self, **_: object) -> None:
        self.closed.set()

    def assignment(self) -> set:
        return set()


def test_a_hung_kafka_client_is_closed_by_the_watchdog_and_replaced(
    delivery: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.alerts.sources import flink_topic as alerts_kafka

    stuck = StuckConsumer()
    opened = first_consumer_is(stuck, monkeypatch)  # it hangs
    monkeypatch.setattr(alerts_kafka, "STALL_S", 1.0)
    sink, records = MemorySink(), alert_records(delivery, 0, 3)
    with delivering(delivery, [sink], group=group(), retry_every=0.2):
        prod = producer(delivery)
        send(prod, delivery.alerts_topic, records)
        kafka_io.close_quietly(prod)
        wait_for(lambda: len(sink.records()) >= 3, 60, "the alerts, through a new consumer")
    assert stuck.closed.is_set() and len(opened) == 2
    assert sorted(r["order_id"] for r in sink.records()) == [order_id(i) for i in range(3)]
    messages = [r.getMessage() for r in caplog.records]
    assert any("made no progress for" in m for m in messages)
    assert any("Event loop stopped" in m and "lost" in m for m in messages)


def test_lost_database_connections_lose_no_batch(
    delivery: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections killed while batches arrive: the consumer restarts from the committed
    offsets (a batch polled but not stored is read again), so every alert gets in."""
    sink, records = MemorySink(), alert_records(delivery, 0, 600)
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with delivering(delivery, [sink], group=group(), retry_every=0.2):
        prod = producer(delivery)
        send(prod, delivery.alerts_topic, records[:100])
        # consuming for sure (a consumer stalled at its group join is reopened after 10 s):
        # from now on, each batch arrives right after the connections were killed
        wait_for(lambda: len(sink.records()) >= 100, 60, "the first batch, consumed")
        with psycopg.connect(delivery.dsn, autocommit=True) as admin:
            for start in range(100, len(records), 100):
                admin.execute(terminate)
                send(prod, delivery.alerts_topic, records[start : start + 100])
        kafka_io.close_quietly(prod)
        wait_for(
            lambda: len({r["alert_id"] for r in sink.records()}) >= len(records),
            60,
            "every alert, across the lost connections",
        )
    assert {r["alert_id"] for r in sink.records()} == {r["alert_id"] for r in records}
    assert ledger_count(delivery, "alerts") == len(records)
    assert "PostgreSQL connection lost" in caplog.text


class IdleConsumer:
    """A consumer that answers but never delivers: without partitions, or with records waiting
    that it does not fetch (the two stalls seen with kafka-python 3.0.12)."""

    def __init__(self, topic: str, assigned: bool) -> None:
        self.tp = TopicPartition(topic, 0)
        self.assigned, self.closed = assigned, False

    def poll(self, **_: object) -> dict:
        time.sleep(0.05)
        return {}

    def assignment(self) -> set:
        return {self.tp} if self.assigned else set()

    def end_offsets(self, partitions: list, **_: object) -> dict:
        return {tp: 5 for tp in partitions}

    def position(self, tp: TopicPartition, **_: object) -> int:
        return 0

    def close(self, **_: object) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("assigned", "reason"),
    [(False, "no partition of"), (True, "5 record(s) unread")],
    ids=["never-assigned", "not-fetching"],
)
def test_a_stalled_consumer_is_reopened(
    delivery: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    assigned: bool,
    reason: str,
) -> None:
    from jobs.alerts.sources import flink_topic as alerts_kafka

    idle = IdleConsumer(delivery.alerts_topic, assigned)
    opened = first_consumer_is(idle, monkeypatch)  # it stalls
    # shorter than in production (5 s, 8 s) so the test is quick, but with room for the real
    # consumer that follows: its join takes 0.2-0.5 s here, its first fetch a few ms after
    monkeypatch.setattr(alerts_kafka, "PROBE_AFTER_IDLE_S", 1.5)
    monkeypatch.setattr(alerts_kafka, "JOIN_TIMEOUT_S", 3.0)
    sink, records = MemorySink(), alert_records(delivery, 0, 3)
    with delivering(delivery, [sink], group=group()):
        prod = producer(delivery)
        send(prod, delivery.alerts_topic, records)
        kafka_io.close_quietly(prod)
        wait_for(lambda: len(sink.records()) >= 3, 60, "the alerts, through a new consumer")
    assert idle.closed and len(opened) == 2
    assert sorted(r["order_id"] for r in sink.records()) == [order_id(i) for i in range(3)]
    stalled = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalled) == 1 and reason in stalled[0]


def test_the_consumer_joins_knowing_its_partitions(
    delivery: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the metadata fetched before subscribing, every first join here assigned nothing
    ("No partition metadata for topic") and needed a rejoin, which under CPU load sometimes
    never came (9 of 60 joins stalled)."""
    from jobs.alerts.sources import flink_topic as alerts_kafka

    caplog.set_level("WARNING", logger="kafka")
    for _ in range(3):
        consumer = alerts_kafka.open_consumer(delivery, group())
        try:
            wait_for(lambda c=consumer: bool(c.poll(timeout_ms=50) or c.assignment()), 30, "a join")
            assert consumer.assignment() == {
                TopicPartition(delivery.alerts_topic, p) for p in (0, 1)
            }
        finally:
            consumer.close(autocommit=False)
    assert "No partition metadata" not in caplog.text
