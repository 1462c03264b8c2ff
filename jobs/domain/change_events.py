"""Debezium-style change events: the envelope and exact value conversion."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# PostgreSQL type OIDs whose text form we convert; everything else stays text
_INTS = {20, 21, 23}  # int8, int2, int4
_NUMERIC = 1700
_FLOATS = {700, 701}
_BOOL = 16
_TIMESTAMPTZ, _TIMESTAMP = 1184, 1114
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def value_from_text(type_oid: int, text: str | None) -> Any:
    """A column's pgoutput text value as a Python value; NUMERIC stays an exact Decimal."""
    if text is None:
        return None
    if type_oid in _INTS:
        return int(text)
    if type_oid == _NUMERIC:
        try:
            return Decimal(text)
        except InvalidOperation:
            return text
    if type_oid in _FLOATS:
        return float(text)
    if type_oid == _BOOL:
        return text == "t"
    # Decision: a timestamp Python cannot hold ('infinity', BC dates, years past 9999, or
    # a zone shift across year 1 or 9999) stays PostgreSQL's text, as odd NUMERIC text does:
    # the rules never read timestamps, so the change is still evaluated and no alert is lost.
    if type_oid == _TIMESTAMPTZ:
        try:  # ISO 8601 in UTC, as Debezium's ZonedTimestamp
            parsed = dt.datetime.fromisoformat(text)
            return parsed.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        except (ValueError, OverflowError):
            return text
    if type_oid == _TIMESTAMP:
        try:
            return dt.datetime.fromisoformat(text).isoformat()
        except ValueError:
            return text
    return text


def envelope(
    op: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    lsn: int,
    tx_id: int,
    commit_ts_ms: int,
    db: str,
    schema: str = "public",
    table: str = "orders",
    now_ms: int | None = None,
) -> dict[str, Any]:
    """A Debezium envelope (``op`` c/u/d/r) with the source block the rules and ids rely on."""
    if op not in ("c", "u", "d", "r"):
        raise ValueError(f"unknown change op {op!r}")
    if now_ms is None:
        now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return {
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "op": op,
        "ts_ms": now_ms,
        "source": {
            "connector": "postgresql",
            "name": "cdc",
            "db": db,
            "schema": schema,
            "table": table,
            "lsn": lsn,
            "txId": tx_id,
            "ts_ms": commit_ts_ms,
        },
    }


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # decimal.handling.mode=string: exact, never base64
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):  # a record such as an Alert: its JSON object
        return dict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(obj: Any) -> str:
    """Compact JSON with decimals as exact strings."""
    return json.dumps(obj, default=_default, separators=(",", ":"))
