"""Alert delivery for the full profile: the Flink job's alert records on Kafka -> ledger -> sinks.

Exactly once, end to end. The Flink job's Kafka sink is at-least-once, so a record may arrive
twice; its ``alert_id`` is deterministic and the ledger stores an alert once. A polled batch is
made durable in the ledger (one transaction) before its offsets are committed, so a crash
between the two only replays records the ledger already holds. Each sink then gets each alert
once through the ledger's claim/finish protocol, with the same DeliveryWorkers, sinks and ledger
as the lite engine (``jobs.alerts``). A malformed record is quarantined in the ledger's
``rejected_alerts`` with its position and the reason, and the stream goes on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from kafka import KafkaConsumer
from kafka.errors import FencedInstanceIdError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from jobs.adapters import kafka_io, ledger
from jobs.adapters.alert_sinks import Sink
from jobs.alerts import DeliveryWorker, build_sinks, check_database, start_workers
from jobs.domain.rules import ALERT_FIELDS
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


class Rejected(ValueError):
    """A record that is not an alert; the message is the reason kept in the quarantine."""


def parse_alert(value: bytes | None) -> dict[str, Any]:
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
    return {f: record[f] for f in ALERT_FIELDS} | {"source_lsn": lsn}


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


def run_delivery(
    settings: Settings,
    stop: threading.Event,
    sinks: Sequence[Sink] | None = None,
    group: str | None = None,
    retry_every: float = 5.0,
) -> None:
    """Run until ``stop`` is set: consume alert records, make them durable, commit, deliver.

    Unreachable PostgreSQL or Kafka at start is ServiceUnavailable; a later loss of either is
    logged and retried every ``retry_every`` seconds (the committed offsets say where to resume).
    """
    group = group or DEFAULT_GROUP
    check_database(settings)
    consumer: KafkaConsumer | None = open_consumer(settings, group)
    sinks = list(sinks) if sinks is not None else build_sinks(settings, stop)
    halt = threading.Event()  # stops the workers once the consuming side has stopped
    workers: list[DeliveryWorker] = []
    try:
        with psycopg.connect(settings.dsn) as conn:
            ledger.ensure_schema(conn)
        workers = start_workers(settings.dsn, sinks, halt)
        while not stop.is_set():
            try:
                consumer = consumer or open_consumer(settings, group)
                _consume(consumer, settings, stop, [s.name for s in sinks], workers, group)
            except Stalled as exc:
                log.warning("alerts: the Kafka consumer stalled (%s); reopening it", exc)
                _close(consumer)
                consumer = None
            except FencedInstanceIdError as exc:
                raise ServiceUnavailable(
                    f"alerts: another delivery process of group {group} took over; stopping"
                ) from exc
            except (KafkaError, ServiceUnavailable) as exc:
                log.warning(
                    "alerts: Kafka at %s lost (%s); retrying in %.0fs",
                    settings.kafka_bootstrap_servers,
                    first_line(exc),
                    retry_every,
                )
                _close(consumer)
                consumer = None
                stop.wait(retry_every)
            except psycopg.OperationalError as exc:
                log.warning(
                    "alerts: PostgreSQL connection lost (%s); retrying in %.0fs",
                    first_line(exc),
                    retry_every,
                )
                # the consumer's position moved past a batch that may not be durable: start
                # again from the committed offsets
                _close(consumer)
                consumer = None
                stop.wait(retry_every)
    finally:
        halt.set()
        for worker in workers:
            worker.join(timeout=15)
        _close(consumer)
        for sink in sinks:
            sink.close()


def _close(consumer: KafkaConsumer | None) -> None:
    if consumer is not None:
        try:
            consumer.close(autocommit=False, timeout_ms=2000)
        except KafkaError as exc:  # closing a consumer whose broker is gone: nothing to keep
            log.debug("alerts: closing the consumer: %s", exc)


def _consume(
    consumer: KafkaConsumer,
    settings: Settings,
    stop: threading.Event,
    sink_names: list[str],
    workers: list[DeliveryWorker],
    group: str,
) -> None:
    with psycopg.connect(settings.dsn) as conn:
        log.info(
            "alerts: consuming %s as group %s, delivering to %s",
            settings.alerts_topic,
            group,
            ", ".join(sink_names),
        )
        last_batch = probed = time.monotonic()
        with _Watchdog(consumer) as watchdog:
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=POLL_MS, max_records=MAX_POLL_RECORDS)
                now = time.monotonic()
                if batch:
                    _step(conn, consumer, batch, sink_names, workers)
                    last_batch = probed = now
                elif now - probed > PROBE_AFTER_IDLE_S:
                    _probe(consumer, settings.alerts_topic, quiet_s=now - last_batch)
                    probed = time.monotonic()
                watchdog.beat()


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

    def __enter__(self) -> _Watchdog:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()

    def run(self) -> None:
        while not self.done.wait(1.0):
            stalled = time.monotonic() - self.last
            if stalled > STALL_S:
                log.error(
                    "alerts: the Kafka client made no progress for %.0f s; reconnecting", stalled
                )
                _close(self.consumer)
                return


class Stalled(Exception):
    """The consumer answers but gets nothing, although there is something to get."""


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


Quarantined = tuple[str, int, int, str, bytes | None]  # topic, partition, offset, reason, value


def _step(
    conn: psycopg.Connection,
    consumer: KafkaConsumer,
    batch: dict[TopicPartition, list[Any]],
    sink_names: list[str],
    workers: list[DeliveryWorker],
) -> None:
    """One polled batch: alerts and quarantined records durable in one transaction, then commit."""
    alerts: list[tuple[dict[str, Any], Any]] = []  # (alert, its ConsumerRecord)
    rejected: list[Quarantined] = []
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for tp, records in batch.items():
        for rec in records:
            try:
                alerts.append((parse_alert(rec.value), rec))
            except Rejected as exc:
                rejected.append(_quarantine(rec, str(exc)))
        offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
    try:
        _record(conn, [a for a, _ in alerts], rejected, sink_names)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:  # a value the ledger cannot hold: find it, keep the others
        log.warning(
            "alerts: storing a batch failed (%s); storing it alert by alert", first_line(exc)
        )
        _record_one_by_one(conn, alerts, rejected, sink_names)
    for worker in workers:  # durable now: delivery need not wait for the offset commit
        worker.wake.set()
    consumer.commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)  # only now: the batch is durable


def _quarantine(rec: Any, reason: str) -> Quarantined:
    log.warning("alerts: quarantined %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, reason)
    return (rec.topic, rec.partition, rec.offset, reason, rec.value)


def _record(
    conn: psycopg.Connection,
    alerts: list[dict[str, Any]],
    rejected: list[Quarantined],
    sink_names: list[str],
) -> None:
    with conn.transaction():
        ledger.record_alerts(conn, alerts, sink_names)
        ledger.record_rejected(conn, rejected)


def _record_one_by_one(
    conn: psycopg.Connection,
    alerts: list[tuple[dict[str, Any], Any]],
    rejected: list[Quarantined],
    sink_names: list[str],
) -> None:
    """The slow path after a failed batch (e.g. a NUL in a text, which jsonb refuses)."""
    for alert, rec in alerts:
        try:
            _record(conn, [alert], [], sink_names)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            rejected.append(_quarantine(rec, f"not storable in the ledger: {first_line(exc)}"))
    _record(conn, [], rejected, sink_names)
