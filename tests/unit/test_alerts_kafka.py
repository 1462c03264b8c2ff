"""The Kafka delivery's parsing of alert records: what is an alert, what is quarantined, why."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from jobs.alerts.sources.flink_topic import Rejected, instance_id, parse_alert
from jobs.domain.change_events import envelope, to_json
from jobs.domain.rules import ALERT_FIELDS, alerts_for_change
from jobs.settings import Settings

PARAMS = Settings(_env_file=None).alert_params()  # type: ignore[call-arg]


def record(**after: object) -> dict:
    row = {"order_id": "O1", "customer_id": "C1", "product_name": "Lamp", "price": "5.00"}
    row.update({"quantity": 0, "total": "0.00"}, **after)
    event = envelope("c", None, row, lsn=4242, tx_id=7, commit_ts_ms=1_700_000_000_123, db="d")
    (alert,) = alerts_for_change(event, PARAMS, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    return alert


def test_a_record_as_the_lite_engine_builds_it_passes_unchanged() -> None:
    alert = record(product_name="Lámpara ☂", total=Decimal("-0.01"))
    parsed = parse_alert(to_json(alert).encode())
    assert parsed == alert
    assert list(parsed) == list(ALERT_FIELDS)  # the contract's order, whatever the JSON's


def test_extra_fields_are_dropped_and_a_numeric_lsn_string_is_accepted() -> None:
    alert = record()
    sent = {**alert, "source_lsn": "4242", "flink_partition": 3}
    assert parse_alert(json.dumps(sent).encode()) == alert


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message"),
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xc3\x28", "not UTF-8"),
        (b'"a string"', "not a JSON object but str"),
        (b"[]", "not a JSON object but list"),
        (json.dumps({"alert_id": "x"}).encode(), "missing field(s): alert_type, severity"),
    ],
)
def test_malformed_values_are_rejected_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(Rejected) as err:
        parse_alert(value)
    assert str(err.value).startswith(reason)
    assert "\n" not in str(err.value)  # it is logged as one line


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alert_id": ""}, "alert_id is not a non-empty string"),
        ({"alert_id": 12}, "alert_id is not a non-empty string"),
        ({"alert_type": None}, "alert_type is not a non-empty string"),
        ({"source_lsn": None}, "source_lsn is not an integer"),
        ({"source_lsn": True}, "source_lsn is not an integer"),
        ({"source_lsn": 1.5}, "source_lsn is not an integer"),
    ],
)
def test_records_whose_keys_the_ledger_needs_are_bad_are_rejected(
    change: dict, reason: str
) -> None:
    with pytest.raises(Rejected, match=reason):
        parse_alert(json.dumps(record() | change).encode())


def test_the_static_member_id_is_a_legal_kafka_id() -> None:
    assert instance_id("shoplake-alert-delivery") == "shoplake-alert-delivery.delivery"
    assert instance_id("a group/with spaces") == "a_group_with_spaces.delivery"
