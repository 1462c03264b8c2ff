"""The flink engine's source: the Flink job's alert records on the alerts topic (Kafka).

Exactly once, end to end. The Flink job's Kafka sink is at-least-once, so a record may arrive
twice; its ``alert_id`` is deterministic and the ledger stores an alert once. A polled batch
is made durable in the ledger before its offsets are committed (``confirm``), so a crash
between the two only replays records the ledger already holds. A malformed record is
quarantined in the ledger's ``rejected_alerts`` with its position and the reason, and the
stream goes on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer
from kafka.errors import FencedInstanceIdError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from jobs.adapters import kafka_io
from jobs.alerts.model import Batch, Lost, Rejected, RejectedMessage, Reopen
from jobs.domain.alert import ALERT_FIELDS, Alert
from jobs.errors import ServiceUnavailable, first_line
from jobs.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_GROUP = "shoplake-alert-delivery"
POLL_MS = 50  # how long one poll waits for records: bounds the added latency
FETCH_MAX_WAIT_MS = 50  # how long the broker holds a fetch open when there is nothing new
MAX_POLL_RECORDS = 2000  # one ledger transaction and one offset commit per batch
BOOTSTRAP_TIMEOUT_MS = 5000
COMMIT_TIMEOUT_MS = 10000
PROBE_AFTER_IDLE_S = 5.0  # an idle consumer cannot tell a quiet topic from a lost broker: ask
# a loop turn takes a poll (50 ms), a ledger transaction and a commit (at most 10 s): far
# longer means the client hangs (see _Watchdog)
STALL_S = 30.0
JOIN_TIMEOUT_S = 8.0  # a join takes well under a second here; no partitions after this: a stall


def parse_alert(value: bytes | None) -> Alert:
    """The alert record in a message value, in the contract's field order; Rejected if malformed."""
    if value is None:
        raise Rejected("empty message (no value)")
    try:
        record = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Rejected(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise Rejected(f"not JSON: {exc.msg} at char {exc.pos}") from exc
    if not isinstance(record, dict):
        raise Rejected(f"not a JSON object but {type(record).__name__}")
    missing = [f for f in ALERT_FIELDS if f not in record]
    if missing:
        raise Rejected(f"missing field(s): {', '.join(missing)}")
    if not isinstance(record["alert_id"], str) or not record["alert_id"].strip():
        raise Rejected("alert_id is not a non-empty string")
    if not isinstance(record["alert_type"], str) or not record["alert_type"]:
        raise Rejected("alert_type is not a non-empty string")
    lsn = record["source_lsn"]
    if isinstance(lsn, str) and lsn.isdigit():
        lsn = int(lsn)
    if isinstance(lsn, bool) or not isinstance(lsn, int):
        raise Rejected(f"source_lsn is not an integer: {lsn!r}")
    # the contract's fields only, so both engines hand the sinks the very same records
    return Alert.from_record(record | {"source_lsn": lsn})


def instance_id(group: str) -> str:
    """The static member id: a restart takes over its partitions at once, and a second
    delivery process of the same group is fenced instead of racing the first on the ledger."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{group}.delivery")[:249]


def open_consumer(settings: Settings, group: str) -> KafkaConsumer:
    """A consumer of the alerts topic, committing by hand; ServiceUnavailable if no broker."""
    servers = settings.kafka_bootstrap_servers
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=servers.split(","),
            client_id=f"shoplake-alerts-{group}",
            group_id=group,
            group_instance_id=instance_id(group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_poll_records=MAX_POLL_RECORDS,
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
            request_timeout_ms=COMMIT_TIMEOUT_MS,
        )
        kafka_io.subscribe(consumer, settings.alerts_topic)  # knowing its partitions first
    except KafkaTimeoutError as exc:
        raise ServiceUnavailable(
            f"alerts: no Kafka broker answers at {servers}"
            f" (waited {BOOTSTRAP_TIMEOUT_MS / 1000:.0f} s; set SHOPLAKE_KAFKA_BOOTSTRAP)"
        ) from exc
    except KafkaError as exc:
        raise ServiceUnavailable(f"alerts: cannot use Kafka at {servers}: {exc!r}") from exc
    return consumer


def _close(consumer: KafkaConsumer | None) -> None:
    if consumer is not None:
        try:
            consumer.close(autocommit=False, timeout_ms=2000)
        except KafkaError as exc:  # closing a consumer whose broker is gone: nothing to keep
            log.debug("alerts: closing the consumer: %s", exc)


class _Watchdog(threading.Thread):
    """Unblocks a consumer that stopped making progress, so the delivery reconnects.

    kafka-python 3.0.12 (the newest release served here) waits for its IO thread without a
    timeout in every blocking call (``poll``, ``commit``...): upstream dpkp/kafka-python#3121
    reports consumers blocked in ``commit()`` for hours (later releases bound the wait). Not
    seen here, but nothing else would notice it. Closing the consumer from this thread fails
    that wait with a KafkaError, which the delivery loop handles like a lost broker.
    """

    def __init__(self, consumer: KafkaConsumer) -> None:
        super().__init__(name="kafka-watchdog", daemon=True)
        self.consumer = consumer
        self.last = time.monotonic()
        self.done = threading.Event()

    def beat(self) -> None:
        self.last = time.monotonic()

    def run(self) -> None:
        while not self.done.wait(1.0):
            stalled = time.monotonic() - self.last
            if stalled > STALL_S:
                log.error(
                    "alerts: the Kafka client made no progress for %.0f s; reconnecting", stalled
                )
                _close(self.consumer)
                return


class Stalled(Reopen):
    """The consumer answers but gets nothing, although there is something to get."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the Kafka consumer stalled ({reason})")


def _probe(consumer: KafkaConsumer, topic: str, quiet_s: float) -> None:
    """Ask the broker for the log ends (KafkaError when it is gone) and catch a stalled consumer.

    kafka-python 3.0.12 (the newest release served here) can stay without partitions after
    a join that raced its first metadata answer (``kafka_io.subscribe`` now fetches the
    metadata first, which removed that stall in the measurements there), or stop fetching while
    ``poll()`` keeps returning nothing and raises nothing (upstream dpkp/kafka-python#3106).
    Unread records after a quiet spell, or no partitions for long, mean a stall: the caller
    reopens the consumer.
    """
    assigned = consumer.assignment()
    if not assigned:
        consumer.end_offsets([TopicPartition(topic, 0)], timeout_ms=COMMIT_TIMEOUT_MS)
        if quiet_s > JOIN_TIMEOUT_S:
            raise Stalled(f"no partition of {topic} assigned after {quiet_s:.0f} s")
        return
    ends = consumer.end_offsets(list(assigned), timeout_ms=COMMIT_TIMEOUT_MS)
    unread = sum(
        max(0, ends[tp] - (consumer.position(tp, timeout_ms=COMMIT_TIMEOUT_MS) or 0))
        for tp in assigned
    )
    if unread:
        raise Stalled(f"{unread} record(s) unread, none fetched for {quiet_s:.0f} s")


Record = Any  # a kafka ConsumerRecord


class TopicSource:
    """The alerts topic, read as consumer group ``group`` (offsets committed by ``confirm``)."""

    refused = "not storable in the ledger"

    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.settings, self.group = settings, group or DEFAULT_GROUP
        self.topic, self.servers = settings.alerts_topic, settings.kafka_bootstrap_servers
        self.what = f"consuming {self.topic} as group {self.group}"
        self.consumer: KafkaConsumer | None = None
        self.watchdog: _Watchdog | None = None
        self.last_batch = self.probed = 0.0

    @property
    def is_open(self) -> bool:
        return self.consumer is not None

    def open(self) -> None:
        try:
            consumer = open_consumer(self.settings, self.group)
        except ServiceUnavailable as exc:
            raise Lost(f"Kafka at {self.servers}", first_line(exc), at_start=str(exc)) from exc
        self.consumer = consumer
        self.watchdog = _Watchdog(consumer)
        self.watchdog.start()
        self.last_batch = self.probed = time.monotonic()

    def poll(self) -> Batch[Record]:
        assert self.consumer is not None and self.watchdog is not None, "poll() before open()"
        with self._errors():
            polled = self.consumer.poll(timeout_ms=POLL_MS, max_records=MAX_POLL_RECORDS)
            now = time.monotonic()
            if not polled and now - self.probed > PROBE_AFTER_IDLE_S:
                _probe(self.consumer, self.topic, quiet_s=now - self.last_batch)
                self.probed = time.monotonic()
        self.watchdog.beat()
        if not polled:
            return Batch()
        self.last_batch = self.probed = now
        offsets = {
            tp: OffsetAndMetadata(recs[-1].offset + 1, "", -1) for tp, recs in polled.items()
        }
        return Batch(items=[r for recs in polled.values() for r in recs], position=offsets)

    def alerts(self, item: Record) -> list[Alert]:
        return [parse_alert(item.value)]

    def reject(self, item: Record, reason: str) -> RejectedMessage:
        return RejectedMessage(item.topic, item.partition, item.offset, reason, item.value)

    def confirm(self, batch: Batch[Record]) -> None:
        if batch.position and self.consumer is not None:
            with self._errors():
                self.consumer.commit(batch.position, timeout_ms=COMMIT_TIMEOUT_MS)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.done.set()
            self.watchdog = None
        consumer, self.consumer = self.consumer, None
        _close(consumer)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except FencedInstanceIdError as exc:
            raise ServiceUnavailable(
                f"alerts: another delivery process of group {self.group} took over; stopping"
            ) from exc
        except KafkaError as exc:
            raise Lost(f"Kafka at {self.servers}", first_line(exc)) from exc
