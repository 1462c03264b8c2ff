"""The composition root: the one place that reads Settings and picks every backend.

``Resources`` is built once per process from ``Settings`` (the CLI, an Airflow task, ``up``,
the API, the dashboard) and hands each use case what it needs: the lake, the model
registry, the dashboard channel, the medallion's config and the hooks that run after a
publish, and the alerts' change source (per engine), ledger and sinks. Nothing else calls a
backend's constructor; a test hands in its own parts (``Resources(settings, lake=...)``).
Backends are built on first use, so a command that never touches the registry never
imports W&B.

Models: cosmicpython's ``bootstrap.py`` and Dagster's resources.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobs.adapters.lake import FolderLake, Lake, S3Lake
from jobs.adapters.notify import DashboardChannel
from jobs.adapters.registry import ModelRegistry, PromotionPolicy
from jobs.alerts import Engine
from jobs.alerts.ledger.postgres import PgLedger
from jobs.alerts.sinks import Sink
from jobs.alerts.sinks.build import TelegramTarget, build_sinks
from jobs.alerts.sources import AlertSource
from jobs.domain.reports import Thresholds
from jobs.settings import Settings

Hook = Callable[[], None]


@dataclass(frozen=True)
class MedallionConfig:
    """What the medallion needs besides the lake: its source, its clock and its limits."""

    dsn: str
    timezone: str
    thresholds: Thresholds


def lake_kind(settings: Settings) -> str:
    """Which lake backend the settings select: ``s3`` for an ``s3://`` URI, else ``folder``."""
    return "s3" if settings.lake_is_s3 else "folder"


def lake_for(settings: Settings) -> Lake:
    """The lake the settings point at (S3 for ``s3://``, else a folder)."""
    if lake_kind(settings) == "s3":
        return S3Lake.from_settings(settings)
    return FolderLake(Path(settings.lake_uri.removeprefix("file://")))


def registry_for(settings: Settings, policy: PromotionPolicy | None = None) -> ModelRegistry:
    """The registry ``SHOPLAKE_REGISTRY`` names: W&B artifacts, or a versioned folder."""
    if settings.registry_backend == "wandb":
        from jobs.adapters.registry.wandb import WandbRegistry

        key = settings.wandb_api_key.get_secret_value() if settings.wandb_api_key else None
        return WandbRegistry(
            settings.wandb_project,
            run_dir=settings.data_path / "wandb",
            base_url=settings.wandb_base_url,
            api_key=key,
            policy=policy,
        )
    from jobs.adapters.registry.local import LocalRegistry

    return LocalRegistry(settings.data_path / "registry", policy=policy)


def after_publish_hooks(settings: Settings, lake: Lake) -> list[Hook]:
    """What runs after the medallion publishes a day: on an S3 lake, a Trino that answers
    sees the new partitions at once (best effort; it registers the whole lake when it
    starts). A folder lake has no Trino catalog, so no hook."""
    if lake_kind(settings) != "s3":
        return []
    from jobs.adapters import trino_tables

    return [functools.partial(trino_tables.after_medallion, settings, lake)]


class Resources:
    """Every backend of one installation, built from ``Settings`` on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        lake: Lake | None = None,
        registry: ModelRegistry | None = None,
        after_publish: Sequence[Hook] | None = None,
    ) -> None:
        self.settings = settings
        self._lake = lake
        self._registry = registry
        self._after_publish = None if after_publish is None else list(after_publish)

    @classmethod
    def of(cls, given: Settings | Resources) -> Resources:
        """``given`` if it is already Resources, else the installation's from its Settings
        (entry points accept either: the CLI and the DAG hold Settings)."""
        return given if isinstance(given, Resources) else cls(given)

    @functools.cached_property
    def lake(self) -> Lake:
        return self._lake or lake_for(self.settings)

    def registry(self, policy: PromotionPolicy | None = None) -> ModelRegistry:
        """The model registry (with ``policy`` for promotions, when a trainer asks)."""
        if self._registry is not None:
            return self._registry
        return registry_for(self.settings, policy)

    @functools.cached_property
    def dashboard(self) -> DashboardChannel:
        """The live dashboard's Redis channel and keys."""
        return DashboardChannel(self.settings.redis_url)

    @functools.cached_property
    def after_publish(self) -> list[Hook]:
        if self._after_publish is not None:
            return self._after_publish
        return after_publish_hooks(self.settings, self.lake)

    @functools.cached_property
    def medallion(self) -> MedallionConfig:
        s = self.settings
        return MedallionConfig(
            dsn=s.dsn,
            timezone=s.timezone,
            thresholds=Thresholds(warn=s.reject_rate_warn, fail=s.reject_rate_fail),
        )

    # ---- the alerts
    def alert_source(
        self,
        engine: Engine,
        *,
        slot: str | None = None,
        group: str | None = None,
        ping_interval: float = 5.0,
    ) -> AlertSource:
        """Where an engine's alerts come from: the python engine evaluates the rules on
        PostgreSQL's logical slot; the flink engine reads the Flink job's output topic."""
        s = self.settings
        if Engine(engine) is Engine.FLINK:
            from jobs.alerts.sources.flink_topic import TopicSource  # kafka-python: flink only

            return TopicSource(s, group)
        from jobs.alerts.sources.pg_slot import SlotSource

        return SlotSource(s.dsn, s.alert_params(), slot, ping_interval)

    def alert_ledger(self) -> PgLedger:
        """The delivery ledger (exactly-once, dead letters) in the shop's PostgreSQL."""
        return PgLedger(self.settings.dsn)

    def alert_sinks(
        self,
        stop: threading.Event,
        *,
        console: bool | None = None,
        console_fmt: Literal["text", "json"] = "text",
        lake: bool = True,
    ) -> list[Sink]:
        """The sinks the settings ask for (Telegram, the webhook; the console when Telegram
        is not configured) and the lake's alert history."""
        s = self.settings
        telegram = None
        if s.telegram_bot_token and s.telegram_chat_id:
            telegram = TelegramTarget(
                s.telegram_api_url, s.telegram_bot_token.get_secret_value(), s.telegram_chat_id
            )
        return build_sinks(
            stop,
            telegram=telegram,
            webhook_url=s.alert_webhook_url,
            console=console,
            console_fmt=console_fmt,
            lake=self.lake if lake else None,
        )
