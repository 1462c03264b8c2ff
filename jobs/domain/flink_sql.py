"""The Flink alert job as SQL, compiled from ``rules.RULES``: no second copy of the rules.

The job reads Debezium envelopes of ``public.orders`` from Kafka and writes one alert
record per newly broken rule, field for field what ``rules.alerts_for_change`` builds
(``detected_at`` aside, which is each engine's processing time). Pure: the use case in
``jobs.alerts.flink_job`` feeds it the settings' values and ships the statements to PyFlink.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from jobs.domain import rules
from jobs.domain.generator import ORDERS_SCHEMA

SOURCE_TABLE = "cdc_orders"
SINK_TABLE = "alerts"
# Flink DATE_FORMAT pattern for rules.iso_ms's shape (UTC: the job sets the session zone)
ISO_MS = "yyyy-MM-dd''T''HH:mm:ss.SSS"


@dataclass(frozen=True)
class KafkaEnds:
    """Where the job reads and writes: the broker, both topics and its consumer group."""

    bootstrap: str
    cdc_topic: str
    alerts_topic: str
    group_id: str


def _debezium_type(dtype: pa.DataType) -> str:
    """The Flink SQL type of a column as Debezium's JSON carries it (decimals as strings)."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "STRING"
    if pa.types.is_decimal(dtype):
        return "STRING"  # decimal.handling.mode=string: exact text, never base64
    if pa.types.is_timestamp(dtype):
        return "STRING"  # timestamptz: Debezium's ZonedTimestamp, ISO 8601 text
    if pa.types.is_int8(dtype) or pa.types.is_int16(dtype) or pa.types.is_int32(dtype):
        return "INT"
    if pa.types.is_int64(dtype):
        return "BIGINT"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    raise ValueError(f"no Debezium JSON mapping for column type {dtype}")


def order_row_type(schema: pa.Schema = ORDERS_SCHEMA) -> str:
    """``ROW<...>`` mirroring ``public.orders`` as Debezium emits it."""
    fields = ", ".join(f"`{f.name}` {_debezium_type(f.type)}" for f in schema)
    return f"ROW<{fields}>"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with(options: Mapping[str, str]) -> str:
    return ",\n  ".join(f"{_literal(k)} = {_literal(v)}" for k, v in options.items())


def source_ddl(ends: KafkaEnds, schema: pa.Schema = ORDERS_SCHEMA) -> str:
    """The CDC topic as a table of envelopes (value only; the Debezium key is not needed)."""
    row = order_row_type(schema)
    options = {
        "connector": "kafka",
        "topic": ends.cdc_topic,
        "properties.bootstrap.servers": ends.bootstrap,
        "properties.group.id": ends.group_id,
        # resume where the last run committed (offsets are committed on checkpoints);
        # a new group starts at the beginning of the topic
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        # a topic created after the job started is picked up within seconds
        "scan.topic-partition-discovery.interval": "5 s",
        "format": "json",
        # a record that is not JSON at all is skipped, not a crash loop
        "json.ignore-parse-errors": "true",
        "json.fail-on-missing-field": "false",
    }
    return (
        f"CREATE TABLE {SOURCE_TABLE} (\n"
        f"  `before` {row},\n"
        f"  `after` {row},\n"
        "  `op` STRING,\n"
        "  `source` ROW<`lsn` BIGINT, `ts_ms` BIGINT>\n"
        f") WITH (\n  {_with(options)}\n)"
    )


def sink_ddl(ends: KafkaEnds) -> str:
    """The alerts topic: JSON records keyed by ``alert_id``.

    The key puts every copy of an alert (a replay after a restart) in one partition, so the
    delivery side sees them in order. At-least-once delivery, not Kafka transactions: the
    delivery ledger de-duplicates by the deterministic ``alert_id``, which gives exactly-once
    end to end without the latency of transactions (readers would wait for each checkpoint).
    """
    options = {
        "connector": "kafka",
        "topic": ends.alerts_topic,
        "properties.bootstrap.servers": ends.bootstrap,
        "key.format": "raw",
        "key.fields": "alert_id",
        "value.format": "json",
        "value.fields-include": "ALL",
        "sink.delivery-guarantee": "at-least-once",
        # send at once: an alert waits for nobody
        "properties.linger.ms": "0",
    }
    columns = ",\n  ".join(f"`{name}` {sql_type}" for name, sql_type in _alert_columns())
    return f"CREATE TABLE {SINK_TABLE} (\n  {columns}\n) WITH (\n  {_with(options)}\n)"


def _alert_columns() -> list[tuple[str, str]]:
    types = {"quantity": "INT", "source_lsn": "BIGINT"}
    return [(name, types.get(name, "STRING")) for name in rules.ALERT_FIELDS]


def _text(expr: str, sql_type: str) -> str:
    """``str()`` of a value as Python renders it in a message: NULL reads as ``None``."""
    value = expr if sql_type == "STRING" else f"CAST({expr} AS STRING)"
    return f"COALESCE({value}, 'None')"


def message_sql(
    template: str, params: Mapping[str, Decimal], schema: pa.Schema = ORDERS_SCHEMA
) -> str:
    """A rule's ``str.format`` template as a SQL string expression over the ``after`` row.

    Mirrors ``alerts_for_change``: row fields render as ``str()`` (None as ``None``),
    parameters as ``str(Decimal)``, unknown names as ``?``. Format specs and conversions
    have no SQL twin, so a template using them is refused here rather than drift.
    """
    types = {f.name: _debezium_type(f.type) for f in schema}
    parts: list[str] = []
    text = ""  # literal text (an escaped brace splits it) waiting to become one SQL literal
    for literal, field, spec, conversion in string.Formatter().parse(template):
        text += literal
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise ValueError(f"message template {template!r}: only plain {{name}} fields")
        if text:
            parts.append(_literal(text))
            text = ""
        if field in params:
            parts.append(_literal(str(params[field])))
        elif field in types:
            parts.append(_text(f"`after`.`{field}`", types[field]))
        else:
            parts.append("'?'")
    if text or not parts:
        parts.append(_literal(text))
    return parts[0] if len(parts) == 1 else f"CONCAT({', '.join(parts)})"


def _fires(rule: rules.Rule, params: Mapping[str, Decimal]) -> str:
    """``rules.newly_broken`` in SQL: an insert breaking the rule, an update newly breaking it."""
    after = rules.to_sql(rule.condition, params, row="`after`.")
    before = rules.to_sql(rule.condition, params, row="`before`.")
    # a NULL before image (replica identity not FULL) compiles to FALSE: "not broken"
    return f"(`op` = 'c' AND {after}) OR (`op` = 'u' AND {after} AND NOT {before})"


def _rule_select(rule: rules.Rule, params: Mapping[str, Decimal]) -> str:
    lsn = "COALESCE(`source`.`lsn`, CAST(0 AS BIGINT))"
    order_id = _text("`after`.`order_id`", "STRING")
    alert_id = (
        f"SUBSTRING(SHA256(CONCAT({order_id}, {_literal('|' + rule.name + '|')}, "
        f"CAST({lsn} AS STRING))) FROM 1 FOR 32)"
    )
    source_ts = f"CONCAT(DATE_FORMAT(TO_TIMESTAMP_LTZ(`source`.`ts_ms`, 3), '{ISO_MS}'), '+00:00')"
    detected_at = f"CONCAT(DATE_FORMAT(CURRENT_TIMESTAMP, '{ISO_MS}'), '+00:00')"
    values = {
        "alert_id": alert_id,
        "alert_type": _literal(rule.name),
        "severity": _literal(rule.severity),
        "order_id": "`after`.`order_id`",
        "customer_id": "`after`.`customer_id`",
        "product_name": "`after`.`product_name`",
        "total": "`after`.`total`",
        "quantity": "`after`.`quantity`",
        "price": "`after`.`price`",
        "detected_at": detected_at,
        "source_ts": source_ts,
        "message": message_sql(rule.message, params),
        "source_lsn": lsn,
    }
    missing = set(rules.ALERT_FIELDS) - set(values)
    if missing:
        raise ValueError(f"alert fields without a SQL expression: {sorted(missing)}")
    select = ",\n    ".join(f"{values[name]} AS `{name}`" for name in rules.ALERT_FIELDS)
    return (
        f"  SELECT\n    {select}\n  FROM {SOURCE_TABLE}\n"
        f"  WHERE `after` IS NOT NULL AND ({_fires(rule, params)})"
    )


def insert_sql(
    params: Mapping[str, Decimal], rule_set: tuple[rules.Rule, ...] = rules.RULES
) -> str:
    """One INSERT over a UNION ALL with one branch per rule (Flink reads the source once)."""
    if not rule_set:
        raise ValueError("no alert rules to compile")
    branches = "\n  UNION ALL\n".join(_rule_select(rule, params) for rule in rule_set)
    return f"INSERT INTO {SINK_TABLE}\n{branches}"


def job_statements(
    ends: KafkaEnds,
    params: Mapping[str, Decimal],
    rule_set: tuple[rules.Rule, ...] = rules.RULES,
) -> tuple[list[str], str]:
    """The DDL statements and the one INSERT the job runs."""
    return [source_ddl(ends), sink_ddl(ends)], insert_sql(params, rule_set)
