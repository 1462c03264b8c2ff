"""The Flink alert job on the real cluster and broker, against the lite engine's rules.

Debezium-shaped envelopes go straight onto a test CDC topic (no Debezium needed here); the
alerts the job writes must be field for field what ``rules.alerts_for_change`` builds from
the same envelopes, ``detected_at`` aside (each engine's processing time).

The cluster comes from ``flink_settings`` (tests/full/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from jobs.adapters import kafka_io
from jobs.alerts import flink_job as flink_alerts
from jobs.domain import change_events, rules
from jobs.settings import Settings
from lite.services.flink.service import JobManager, runtime
from tests.support.alerts_runner import wait_for
from tests.support.kafka_read import wait_for_messages

pytestmark = pytest.mark.integration
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def job_settings(flink_settings: Settings) -> Iterator[Settings]:
    """Unique topics and job name for one test; the job is cancelled and topics deleted after."""
    tag = uuid.uuid4().hex[:8]
    settings = flink_settings.model_copy(
        update={"cdc_topic_prefix": f"f{tag}", "alerts_topic": f"flink-alerts-{tag}"}
    )
    try:
        yield settings
    finally:
        flink_alerts.cancel(settings, runtime(settings))
        kafka_io.delete_topics(settings, [settings.cdc_topic, settings.alerts_topic])
        name = flink_alerts.job_name(settings)
        for leftover in (f"{name}.json", f".{name}.lock"):
            (settings.data_path / "flink-jobs" / leftover).unlink(missing_ok=True)


def order(order_id: str, **values: Any) -> dict[str, Any]:
    """A public.orders row as Debezium sends it (values as Python; decimals become strings)."""
    row: dict[str, Any] = {
        "order_id": order_id,
        "order_date": "2026-05-10T09:30:00.123456Z",
        "customer_id": "CUST-7",
        "product_id": "PROD-3",
        "category": "Office",
        "product_name": "Desk",
        "price": Decimal("100.00"),
        "quantity": 2,
        "total": Decimal("200.00"),
        "status": "processing",
        "payment_method": "card",
        "region": "EU",
        "created_at": "2026-05-10T09:30:00.123456Z",
        "updated_at": "2026-05-10T09:30:00.123456Z",
    }
    return row | values


class Stream:
    """Envelopes with increasing LSNs and commit times, as one database would emit them."""

    def __init__(self) -> None:
        self.lsn = 40_000_000_000  # beyond 32 bits: source_lsn is a BIGINT
        self.ts_ms = 1_778_400_000_123
        self.events: list[dict[str, Any]] = []

    def add(self, op: str, before: dict | None, after: dict | None) -> dict[str, Any]:
        self.lsn += 4096
        self.ts_ms += 1_001
        event = change_events.envelope(
            op,
            before,
            after,
            lsn=self.lsn,
            tx_id=self.lsn // 4096,
            commit_ts_ms=self.ts_ms,
            db="shop",
        )
        # exactly what the topic carries: decimals as exact strings
        self.events.append(json.loads(change_events.to_json(event)))
        return self.events[-1]


def edge_cases(stream: Stream) -> None:
    """Inserts, updates and deletes around every rule's threshold, with odd values."""
    two_rules = order("O-1", total=Decimal("20000.00"), quantity=60, price=Decimal("333.33"))
    stream.add("c", None, two_rules)
    calm = order("O-2")
    stream.add("c", None, calm)
    stream.add("u", calm, calm | {"quantity": 0})  # newly breaks INVALID_QUANTITY
    already = order("O-3", price=Decimal("-5.00"))
    stream.add("c", None, already)
    stream.add("u", already, already | {"price": Decimal("-6.00")})  # still broken: nothing
    stream.add("d", already, None)  # deletes raise nothing
    stream.add("c", None, order("O-4", price=Decimal("-0.01")))
    stream.add("c", None, order("O-5", total=Decimal("10000.00")))  # at the threshold: nothing
    stream.add("c", None, order("O-6", total=Decimal("10000.01")))
    stream.add("c", None, order("O-7", quantity=0))
    stream.add("c", None, order("O-8", quantity=51))
    stream.add("c", None, order("O-9", quantity=50))  # at the threshold: nothing
    stream.add("c", None, order("O-10", product_name=None, customer_id=None, quantity=-3))
    stream.add("c", None, order("O-11", total="abc"))  # garbage: no alert, no crash
    stream.add("c", None, order("O-12", total="n/a", quantity=99))  # only the quantity rule
    stream.add("c", None, order("Ö-13|x", product_name="Stühle 椅子", price=Decimal("-1.50")))
    stream.add("u", None, order("O-14", total=Decimal("12000.50")))  # no before image: new
    stream.add("r", None, order("O-15", total=Decimal("99999.00")))  # snapshot read: nothing
    stream.add("c", None, order("O-16", quantity=None, price=None, total=None))


def expected_alerts(events: list[dict[str, Any]], settings: Settings) -> dict[str, dict]:
    """The lite engine's alerts for the same envelopes, keyed by alert_id, minus detected_at."""
    params = settings.alert_params()
    now = dt.datetime.now(dt.UTC)
    out: dict[str, dict] = {}
    for event in events:
        for alert in rules.alerts_for_change(event, params, now):
            record = dict(alert)  # the record as JSON, to compare with the topic's
            record.pop("detected_at")
            out[record["alert_id"]] = record
    return out


def produce(settings: Settings, events: list[dict[str, Any]], garbage: bool = False) -> None:
    producer = kafka_io.producer(settings, value_serializer=None, key_serializer=None)
    try:
        if garbage:
            producer.send(settings.cdc_topic, b"this is not JSON {")
        for event in events:
            key = json.dumps({"order_id": (event["after"] or event["before"])["order_id"]})
            producer.send(settings.cdc_topic, change_events.to_json(event).encode(), key.encode())
        producer.flush(timeout=30)
    finally:
        kafka_io.close_quietly(producer)


def read_alerts(settings: Settings, done_ids: set[str], timeout: float = 90.0) -> list[Any]:
    """Alert messages until every id in ``done_ids`` has arrived."""
    consumer = kafka_io.consumer(settings, settings.alerts_topic, None)
    try:
        return wait_for_messages(
            consumer,
            lambda msgs: done_ids <= {m.value["alert_id"] for m in msgs},
            timeout_s=timeout,
            what=f"alerts on {settings.alerts_topic}",
        )
    finally:
        kafka_io.close_quietly(consumer)


def start_job(settings: Settings) -> str:
    job, submitted = flink_alerts.submit(settings, runtime(settings))
    assert submitted and job.state == "RUNNING"
    return job.job_id


def test_flink_alerts_equal_the_lite_rules(job_settings: Settings) -> None:
    start_job(job_settings)
    stream = Stream()
    edge_cases(stream)
    # the last alert written marks the end: one partition, one task, order kept
    sentinel = stream.add("c", None, order("O-END", quantity=1000))
    expected = expected_alerts(stream.events, job_settings)
    assert len(expected) == 13  # the cases above: 12 alerts, plus the sentinel's
    produce(job_settings, stream.events, garbage=True)
    sentinel_id = rules.alert_id("O-END", "SUSPICIOUS_QUANTITY", sentinel["source"]["lsn"])
    messages = read_alerts(job_settings, {sentinel_id})

    got: dict[str, dict] = {}
    for msg in messages:
        alert = dict(msg.value)
        assert msg.key == alert["alert_id"]  # keyed: copies of one alert share a partition
        detected = alert.pop("detected_at")
        assert ISO_MS.match(detected), detected
        assert alert["source_ts"] is None or ISO_MS.match(alert["source_ts"])
        assert got.setdefault(alert["alert_id"], alert) == alert  # a replay is identical
    assert got == expected


def test_submit_is_idempotent_and_a_resubmitted_job_resumes(job_settings: Settings) -> None:
    job_id = start_job(job_settings)
    again, submitted = flink_alerts.submit(job_settings, runtime(job_settings))
    assert (again.job_id, submitted) == (job_id, False)

    first, second = Stream(), Stream()
    first.add("c", None, order("R-1", total=Decimal("50000.00")))
    second.lsn, second.ts_ms = first.lsn, first.ts_ms
    second.add("c", None, order("R-2", quantity=77))
    produce(job_settings, first.events)
    read_alerts(job_settings, set(expected_alerts(first.events, job_settings)))

    # offsets are committed with each completed checkpoint: wait for one after the alert
    def checkpoints() -> int:
        return flink_alerts.status(job_settings)[0].checkpoints or 0

    seen = checkpoints()
    wait_for(lambda: checkpoints() > seen, 60, "a checkpoint after the first alert", interval=0.5)
    run_dir = JobManager(job_settings).checkpoint_dir / job_id
    assert list(run_dir.glob("chk-*"))
    assert flink_alerts.cancel(job_settings, runtime(job_settings)) == [job_id]
    # the offsets live on in the consumer group: a cancelled run leaves no checkpoint behind
    assert not run_dir.exists()
    produce(job_settings, second.events)  # written while no job runs
    resumed = start_job(job_settings)
    assert resumed != job_id
    everything = expected_alerts(first.events + second.events, job_settings)
    messages = read_alerts(job_settings, set(everything))
    assert {m.value["alert_id"] for m in messages} == set(everything)
    statuses = {run.job_id: run.state for run in flink_alerts.status(job_settings)}
    assert statuses == {job_id: "CANCELED", resumed: "RUNNING"}


def test_no_jar_can_be_uploaded_through_the_rest_api(flink_settings: Settings) -> None:
    """``web.submit.enable: false``: POST /jars/upload is not served, so nobody reaching the
    port can upload and run a jar (our job goes in as a job graph through PyFlink)."""
    import httpx

    base = f"http://{flink_settings.flink_host}:{flink_settings.flink_port}"
    overview = httpx.get(f"{base}/config", timeout=10).json()
    assert overview["features"]["web-submit"] is False
    answer = httpx.post(
        f"{base}/jars/upload",
        files={"jarfile": ("x.jar", b"PK\x05\x06" + b"\0" * 18, "application/x-java-archive")},
        timeout=10,
    )
    # Flink answers a disabled upload with 400 "POST request not allowed"
    assert answer.status_code == 400 and "not allowed" in answer.text, answer.text
    assert not httpx.get(f"{base}/jars", timeout=10).is_success
