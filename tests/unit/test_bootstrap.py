"""The composition root picks each backend from Settings, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jobs.adapters.lake import FolderLake, S3Lake
from jobs.bootstrap import Resources, after_publish_hooks, lake_kind
from jobs.domain.reports import Thresholds
from jobs.settings import Settings


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_a_folder_lake_has_no_trino_hook(tmp_path: Path) -> None:
    s = settings(tmp_path, lake_uri=f"file://{tmp_path}/lake")
    res = Resources(s)
    assert lake_kind(s) == "folder" and isinstance(res.lake, FolderLake)
    assert res.after_publish == [] == after_publish_hooks(s, res.lake)
    assert res.lake is res.lake  # built once


def test_an_s3_lake_syncs_trino_after_a_publish(tmp_path: Path) -> None:
    s = settings(tmp_path)
    res = Resources(s)
    assert lake_kind(s) == "s3" and isinstance(res.lake, S3Lake)
    (hook,) = res.after_publish
    assert hook.func.__name__ == "after_medallion"  # type: ignore[attr-defined]


def test_parts_handed_in_win_and_of_keeps_resources(tmp_path: Path) -> None:
    lake = FolderLake(tmp_path / "other")
    res = Resources(settings(tmp_path), lake=lake, after_publish=[])
    assert res.lake is lake and res.after_publish == []
    assert Resources.of(res) is res
    assert Resources.of(res.settings).settings is res.settings


def test_the_medallion_gets_its_limits_not_the_settings(tmp_path: Path) -> None:
    s = settings(tmp_path, reject_rate_warn=0.2, reject_rate_fail=0.4, timezone="Europe/Paris")
    config = Resources(s).medallion
    assert config.thresholds == Thresholds(warn=0.2, fail=0.4)
    assert config.timezone == "Europe/Paris" and config.dsn == s.dsn


@pytest.mark.parametrize(
    ("rate", "consistent", "status"),
    [
        (0.0, True, "ok"),
        (0.1, True, "ok"),
        (0.11, True, "warn"),
        (0.51, True, "fail"),
        (0.0, False, "fail"),
    ],
)
def test_thresholds_give_a_days_status(rate: float, consistent: bool, status: str) -> None:
    assert Thresholds(warn=0.1, fail=0.5).status(rate, consistent) == status


def test_thresholds_are_shares() -> None:
    with pytest.raises(ValidationError):
        Thresholds(warn=-0.1, fail=0.5)


def test_alert_parts_follow_the_engine_and_the_settings(tmp_path: Path) -> None:
    import threading

    from jobs.alerts import Engine
    from jobs.alerts.sinks.console import ConsoleSink
    from jobs.alerts.sinks.lake import LakeSink
    from jobs.alerts.sinks.telegram import TelegramSink
    from jobs.alerts.sinks.webhook import WebhookSink
    from jobs.alerts.sources.flink_topic import TopicSource
    from jobs.alerts.sources.pg_slot import SlotSource

    stop = threading.Event()
    bare = Resources(settings(tmp_path, lake_uri=f"file://{tmp_path}/lake"))
    assert isinstance(bare.alert_source(Engine.PYTHON), SlotSource)
    assert isinstance(bare.alert_source(Engine("lite")), SlotSource)  # the old name
    assert isinstance(bare.alert_source(Engine.FLINK), TopicSource)
    # no Telegram configured: the console, and the lake's history
    assert [type(s) for s in bare.alert_sinks(stop)] == [ConsoleSink, LakeSink]
    assert bare.alert_sinks(stop, lake=False, console=False) == []
    told = Resources(
        settings(
            tmp_path,
            lake_uri=f"file://{tmp_path}/lake",
            telegram_bot_token="123:abc",
            telegram_chat_id="42",
            alert_webhook_url="http://127.0.0.1:9/hook",
        )
    )
    assert [type(s) for s in told.alert_sinks(stop, lake=False)] == [TelegramSink, WebhookSink]
