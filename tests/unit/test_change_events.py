"""Change events: value conversion, the Debezium envelope, unwrap, and the pgoutput decoder."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from jobs.alerts.sources.pg_slot import default_slot_name
from jobs.alerts.sources.pgoutput import PgOutputDecoder
from jobs.domain.change_events import envelope, to_json, value_from_text

NUMERIC, INT4, TEXT, TSTZ = 1700, 23, 25, 1184


def test_numeric_text_stays_exact():
    value = value_from_text(NUMERIC, "12345678901234567890.12")
    assert value == Decimal("12345678901234567890.12")
    assert json.loads(to_json({"v": value})) == {"v": "12345678901234567890.12"}


def test_other_types_convert():
    assert value_from_text(INT4, "-3") == -3
    assert value_from_text(TEXT, "x") == "x"
    assert value_from_text(TSTZ, "2026-01-02 03:04:05.5+02") == "2026-01-02T01:04:05.500000Z"
    assert value_from_text(NUMERIC, "NaN").is_nan()
    assert value_from_text(NUMERIC, None) is None


def unwrap(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The flattened row, as Debezium's ExtractNewRecordState gives it.

    With ``add.fields=op,lsn,source.ts_ms``; deletes give the ``before`` row with
    ``__deleted = "true"``. Only this test uses it: it shows our envelope is Debezium's.
    """
    op, source = event.get("op"), event.get("source") or {}
    row = event.get("before") if op == "d" else event.get("after")
    if row is None:
        return None
    flat = dict(row)
    flat.update(
        {
            "__op": op,
            "__lsn": source.get("lsn"),
            "__source_ts_ms": source.get("ts_ms"),
            "__deleted": "true" if op == "d" else "false",
        }
    )
    return flat


def test_envelope_and_unwrap():
    ev = envelope(
        "u",
        {"order_id": "A", "quantity": 1},
        {"order_id": "A", "quantity": 9},
        lsn=77,
        tx_id=5,
        commit_ts_ms=1000,
        db="shop",
        now_ms=2000,
    )
    assert ev["op"] == "u" and ev["ts_ms"] == 2000 and ev["before"]["quantity"] == 1
    assert ev["source"] | {} == {
        "connector": "postgresql",
        "name": "cdc",
        "db": "shop",
        "schema": "public",
        "table": "orders",
        "lsn": 77,
        "txId": 5,
        "ts_ms": 1000,
    }
    flat = unwrap(ev)
    assert flat == {
        "order_id": "A",
        "quantity": 9,
        "__op": "u",
        "__lsn": 77,
        "__source_ts_ms": 1000,
        "__deleted": "false",
    }
    deleted = unwrap(envelope("d", {"order_id": "A"}, None, lsn=1, tx_id=1, commit_ts_ms=1, db="s"))
    assert deleted is not None and deleted["order_id"] == "A" and deleted["__deleted"] == "true"
    with pytest.raises(ValueError, match="unknown change op"):
        envelope("x", None, None, lsn=1, tx_id=1, commit_ts_ms=1, db="s")


# ---- pgoutput protocol v1 messages, built byte by byte as the server sends them
def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def _relation() -> bytes:
    cols = [("order_id", TEXT), ("price", NUMERIC), ("quantity", INT4)]
    body = struct.pack("!I", 16384) + _s("public") + _s("orders") + b"f" + struct.pack("!H", 3)
    for name, oid in cols:
        body += b"\1" + _s(name) + struct.pack("!Ii", oid, -1)
    return b"R" + body


def _tuple(*values: str | None) -> bytes:
    out = struct.pack("!H", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "<toast>":
            out += b"u"
        else:
            out += b"t" + struct.pack("!I", len(v.encode())) + v.encode()
    return out


def test_decoder_builds_transactions_of_envelopes():
    dec = PgOutputDecoder("shop")
    assert dec.feed(b"B" + struct.pack("!QqI", 900, 86_400_000_000, 42), 100) is None
    dec.feed(_relation(), 101)
    dec.feed(b"I" + struct.pack("!I", 16384) + b"N" + _tuple("A", "-1.50", None), 110)
    dec.feed(
        b"U"
        + struct.pack("!I", 16384)
        + b"O"
        + _tuple("A", "-1.50", None)
        + b"N"
        + _tuple("A", "<toast>", "7"),
        120,
    )
    dec.feed(b"D" + struct.pack("!I", 16384) + b"O" + _tuple("A", "2", "7"), 130)
    tx = dec.feed(b"C" + struct.pack("!BQQq", 0, 900, 950, 86_400_000_000), 900)
    assert tx is not None and tx.xid == 42 and tx.end_lsn == 950
    assert tx.commit_ts_ms == 946_771_200_000  # 2000-01-02 UTC
    c, u, d = tx.events
    assert c["op"] == "c" and c["after"] == {
        "order_id": "A",
        "price": Decimal("-1.50"),
        "quantity": None,
    }
    assert c["source"]["lsn"] == 110 and c["source"]["txId"] == 42
    # an unchanged TOASTed value is taken from the before image
    assert u["op"] == "u" and u["after"]["price"] == Decimal("-1.50")
    assert u["after"]["quantity"] == 7
    assert d["op"] == "d" and d["after"] is None and d["before"]["price"] == Decimal(2)
    assert dec.current is None


def test_slot_names_are_valid_identifiers():
    assert default_slot_name("Shop-Test.1") == "shoplake_alerts_shop_test_1"
    assert len(default_slot_name("x" * 100)) == 63


@pytest.mark.parametrize(
    "text",
    [
        "infinity",
        "-infinity",
        "0044-03-15 12:00:00+00 BC",
        "294276-12-31 23:59:59+00",
        "0001-01-01 00:00:00+05",  # shifted to UTC it falls before year 1
        "9999-12-31 23:59:59-05",  # and here after year 9999
    ],
)
def test_timestamps_python_cannot_hold_stay_postgres_text(text):
    assert value_from_text(TSTZ, text) == text
    assert value_from_text(1114, text.rsplit("+", 1)[0]) is not None
