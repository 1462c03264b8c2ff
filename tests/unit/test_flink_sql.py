"""The Flink job's SQL is compiled from ``rules.RULES`` and the settings, nothing else."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest

from jobs.adapters.source_db import SCHEMA_DDL
from jobs.alerts import flink_job as flink_alerts
from jobs.domain import flink_sql, rules
from jobs.settings import Settings

ENDS = flink_sql.KafkaEnds("127.0.0.1:9092", "cdc.public.orders", "flink-alerts", "grp")


def params(**overrides: object) -> dict[str, Decimal]:
    return Settings(_env_file=None, **overrides).alert_params()  # type: ignore[call-arg, arg-type]


def test_each_rule_appears_once_with_its_message() -> None:
    sql = flink_sql.insert_sql(params())
    assert sql.count("UNION ALL") == len(rules.RULES) - 1
    for rule in rules.RULES:
        assert sql.count(f"'{rule.name}' AS `alert_type`") == 1
        assert rules.to_sql(rule.condition, params(), row="`after`.") in sql
        assert rules.to_sql(rule.condition, params(), row="`before`.") in sql


def test_thresholds_come_from_the_settings() -> None:
    sql = flink_sql.insert_sql(params(alert_high_value=12345.5, alert_max_quantity=7))
    assert "CAST(12345.5 AS DECIMAL(38, 4))" in sql
    assert "CAST(7 AS DECIMAL(38, 4))" in sql
    assert "' is above ', '12345.5'" in sql  # the message renders the same threshold
    assert "10000" not in sql and "CAST(50 " not in sql


def test_a_change_in_the_rules_changes_the_sql() -> None:
    first = rules.RULES[0]
    changed = dataclasses.replace(
        first,
        name="HUGE_ORDER",
        condition=rules.Cmp("ge", rules.Col("total"), rules.Const(Decimal("99.5"))),
        message="Total {total} for {customer_id} ({nope})",
    )
    sql = flink_sql.insert_sql(params(), (changed, *rules.RULES[1:]))
    assert "'HUGE_ORDER' AS `alert_type`" in sql
    assert f"'{first.name}'" not in sql
    assert ">= CAST(99.5 AS DECIMAL(38, 4))" in sql
    message = flink_sql.message_sql(changed.message, params())
    assert message == (
        "CONCAT('Total ', COALESCE(`after`.`total`, 'None'), ' for ', "
        "COALESCE(`after`.`customer_id`, 'None'), ' (', '?', ')')"
    )
    with pytest.raises(ValueError, match="no alert rules"):
        flink_sql.insert_sql(params(), ())


def test_messages_render_like_str_format() -> None:
    assert flink_sql.message_sql("Quantity {quantity} > {alert_max_quantity}", params()) == (
        "CONCAT('Quantity ', COALESCE(CAST(`after`.`quantity` AS STRING), 'None'), ' > ', '50')"
    )
    assert flink_sql.message_sql("it's {{literal}}", params()) == "'it''s {literal}'"
    for bad in ("{total:>10}", "{total!r}", "{after.total}"):
        with pytest.raises(ValueError, match="plain"):
            flink_sql.message_sql(bad, params())


def test_source_row_mirrors_public_orders() -> None:
    ddl = SCHEMA_DDL.split("CREATE TABLE IF NOT EXISTS orders (")[1].split(");")[0]
    columns = [line.split()[:2] for line in ddl.strip().splitlines()]
    debezium = {"text": "STRING", "numeric(12,2)": "STRING", "integer": "INT"}
    debezium["timestamptz"] = "STRING"
    expected = ", ".join(f"`{name}` {debezium[kind.rstrip(',')]}" for name, kind in columns)
    assert flink_sql.order_row_type() == f"ROW<{expected}>"
    source = flink_sql.source_ddl(ENDS)
    assert source.count(f"ROW<{expected}>") == 2  # before and after
    assert "'scan.startup.mode' = 'group-offsets'" in source
    assert "'properties.auto.offset.reset' = 'earliest'" in source
    assert "'properties.group.id' = 'grp'" in source


def test_sink_writes_every_alert_field_keyed_by_alert_id() -> None:
    sink = flink_sql.sink_ddl(ENDS)
    assert re.findall(r"^  `(\w+)`", sink, re.M) == list(rules.ALERT_FIELDS)
    assert "'key.fields' = 'alert_id'" in sink
    assert "'sink.delivery-guarantee' = 'at-least-once'" in sink
    selected = re.findall(r"AS `(\w+)`,?\n", flink_sql.insert_sql(params()))
    assert selected == list(rules.ALERT_FIELDS) * len(rules.RULES)


def test_job_spec_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        cdc_topic_prefix="shop",
        alerts_topic="alerts-x",
        kafka_port=19092,
        flink_port=18081,
    )
    spec = flink_alerts.job_spec(settings, Path("/opt/connector.jar"))
    config = spec["config"]
    assert config["pipeline.name"] == "shoplake-alerts-shop"
    assert config["pipeline.jars"] == "file:///opt/connector.jar"
    assert config["rest.port"] == "18081"
    assert config["table.local-time-zone"] == "UTC"
    assert config["execution.checkpointing.externalized-checkpoint-retention"] == (
        "DELETE_ON_CANCELLATION"
    )
    source, sink = spec["statements"]
    assert "'topic' = 'shop.public.orders'" in source
    assert "'properties.bootstrap.servers' = '127.0.0.1:19092'" in source
    assert f"'properties.group.id' = '{flink_alerts.group_id(settings)}'" in source
    assert "'topic' = 'alerts-x'" in sink
    assert spec["insert"] == flink_sql.insert_sql(settings.alert_params())
