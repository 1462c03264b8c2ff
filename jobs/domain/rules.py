"""Alert rules as data: a tiny engine-neutral expression form, its evaluation and SQL compilation.

Adding a rule: append a ``Rule`` to ``RULES`` (name, severity, condition, message) and, if it
needs a threshold, add it to ``thresholds`` and ``Settings.alert_params``. The same rule is
evaluated here (python engine) and compiled by ``to_sql`` for the full profile (Flink SQL).
A rule fires on an insert, or on an update whose ``before`` row did not already break it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from jobs.domain.alert import ALERT_FIELDS as ALERT_FIELDS  # the record's fields, re-exported
from jobs.domain.alert import Alert

CmpOp = Literal["gt", "ge", "lt", "le", "eq", "ne"]
_SQL_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "=", "ne": "<>"}


@dataclass(frozen=True)
class Col:
    """A column of the flattened (unwrapped) row, read as an exact number."""

    name: str


@dataclass(frozen=True)
class Param:
    """A named threshold taken from the settings."""

    name: str


@dataclass(frozen=True)
class Const:
    value: Decimal


@dataclass(frozen=True)
class Cmp:
    op: CmpOp
    left: Col | Param | Const
    right: Col | Param | Const


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Literal["critical", "high", "medium", "low"]
    condition: Cmp
    message: str  # str.format template over the row's fields and the params


RULES: tuple[Rule, ...] = (
    Rule(
        "HIGH_VALUE_ORDER",
        "high",
        Cmp("gt", Col("total"), Param("alert_high_value")),
        "Order total {total} is above {alert_high_value}",
    ),
    Rule(
        "SUSPICIOUS_QUANTITY",
        "medium",
        Cmp("gt", Col("quantity"), Param("alert_max_quantity")),
        "Quantity {quantity} is above {alert_max_quantity}",
    ),
    Rule(
        "NEGATIVE_PRICE",
        "high",
        Cmp("lt", Col("price"), Const(Decimal(0))),
        "Price {price} is negative",
    ),
    Rule(
        "INVALID_QUANTITY",
        "high",
        Cmp("le", Col("quantity"), Const(Decimal(0))),
        "Quantity {quantity} is zero or negative",
    ),
)


def thresholds(alert_high_value: float, alert_max_quantity: int) -> dict[str, Decimal]:
    """The thresholds the rules refer to, as exact decimals (``Settings.alert_params`` gives
    the configured ones: the domain never sees the settings object)."""
    return {
        "alert_high_value": _exact(alert_high_value),
        "alert_max_quantity": _exact(alert_max_quantity),
    }


def _exact(value: float | int) -> Decimal:
    number = Decimal(str(value))
    # 10000.0 from a float setting reads better (and compiles to SQL) as 10000
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number


def as_number(value: Any) -> Decimal | None:
    """An exact number from a row value, or None when it is null, NaN or not a number.

    Decision: strings holding a number count (Debezium sends decimals as strings); anything
    else (text, booleans, NaN) makes the comparison unknown, so the rule does not fire.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return None if number.is_nan() else number


def _term(term: Col | Param | Const, row: Mapping[str, Any], params: Mapping[str, Decimal]):
    if isinstance(term, Col):
        return as_number(row.get(term.name))
    if isinstance(term, Param):
        return params[term.name]
    return term.value


def evaluate(cond: Cmp, row: Mapping[str, Any] | None, params: Mapping[str, Decimal]) -> bool:
    """True only when the row certainly breaks the condition (unknown counts as False)."""
    if row is None:
        return False
    left, right = _term(cond.left, row, params), _term(cond.right, row, params)
    if left is None or right is None:
        return False
    return {
        "gt": left > right,
        "ge": left >= right,
        "lt": left < right,
        "le": left <= right,
        "eq": left == right,
        "ne": left != right,
    }[cond.op]


def newly_broken(
    rule: Rule,
    op: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    params: Mapping[str, Decimal],
) -> bool:
    """Does this change raise the rule: an insert breaking it, or an update newly breaking it?"""
    if op == "c":
        return evaluate(rule.condition, after, params)
    if op == "u":
        # without a before image (replica identity not FULL) the update counts as new
        return evaluate(rule.condition, after, params) and not evaluate(
            rule.condition, before, params
        )
    return False  # deletes and snapshot reads ("r") raise nothing


def _sql_term(term: Col | Param | Const, params: Mapping[str, Decimal], row: str) -> str:
    if isinstance(term, Col):
        # TRY_CAST: a non-numeric value gives NULL, so the rule is unknown, as in evaluate()
        return f"TRY_CAST({row}`{term.name}` AS DECIMAL(38, 4))"
    value = params[term.name] if isinstance(term, Param) else term.value
    return f"CAST({value} AS DECIMAL(38, 4))"


def to_sql(cond: Cmp, params: Mapping[str, Decimal], row: str = "") -> str:
    """The condition as a SQL boolean expression (Flink SQL dialect; ``row`` prefixes columns)."""
    left, right = _sql_term(cond.left, params, row), _sql_term(cond.right, params, row)
    return f"COALESCE({left} {_SQL_OPS[cond.op]} {right}, FALSE)"


# ---------------------------------------------------------------- alert records
def alert_id(order_id: Any, rule: str, lsn: int) -> str:
    """Deterministic id: the same change seen twice (a replay after a crash) gives the same id."""
    return hashlib.sha256(f"{order_id}|{rule}|{lsn}".encode()).hexdigest()[:32]


def iso_ms(epoch_ms: int) -> str:
    """UTC ISO 8601 with exactly three fraction digits, a form Flink SQL can produce too."""
    seconds, millis = divmod(epoch_ms, 1000)
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).replace(microsecond=millis * 1000)
    return moment.isoformat(timespec="milliseconds")


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _plain(value: Any) -> Any:
    """JSON-friendly value: exact decimals as strings, integers kept, other text as is."""
    if isinstance(value, Decimal):
        return str(value)
    return value


def alerts_for_change(
    event: Mapping[str, Any],
    params: Mapping[str, Decimal],
    detected_at: dt.datetime,
    rules: tuple[Rule, ...] = RULES,
) -> list[Alert]:
    """One alert record per rule newly broken by this change event (Debezium envelope)."""
    op, before, after = event.get("op", ""), event.get("before"), event.get("after")
    source = event.get("source") or {}
    lsn = int(source.get("lsn") or 0)
    broken = [r for r in rules if newly_broken(r, op, before, after, params)]
    if not broken or after is None:
        return []
    src_ms = source.get("ts_ms")
    source_ts = iso_ms(int(src_ms)) if isinstance(src_ms, int | float) else None
    fields = _Blank({k: _plain(v) for k, v in after.items()})
    fields.update({k: str(v) for k, v in params.items()})
    return [
        Alert(
            alert_id=alert_id(after.get("order_id"), rule.name, lsn),
            alert_type=rule.name,
            severity=rule.severity,
            order_id=after.get("order_id"),
            customer_id=after.get("customer_id"),
            product_name=after.get("product_name"),
            total=_plain(after.get("total")),
            quantity=_plain(after.get("quantity")),
            price=_plain(after.get("price")),
            detected_at=detected_at.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
            source_ts=source_ts,
            message=rule.message.format_map(fields),
            source_lsn=lsn,
        )
        for rule in broken
    ]
