"""The one typed settings object: environment variables ``SHOPLAKE_*`` and an optional ``.env``."""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Credentials of the native, loopback-only MinIO. Accepted only while the S3
# endpoint is on this host; anything reachable from elsewhere needs real ones.
DEV_S3_ACCESS_KEY = "shoplake"
DEV_S3_SECRET_KEY = "shoplake-dev-only"

LAKE_BUCKETS = ("bronze", "silver", "gold")

# values a tutorial, a compose file or a tired operator puts in a password field: refused for
# any service reachable beyond this host (lower-cased before comparing)
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "changeit",
        "password",
        "passw0rd",
        "secret",
        "admin",
        "root",
        "postgres",
        "redis",
        "minio",
        "minioadmin",
        "minio123",
        "shoplake",
        DEV_S3_SECRET_KEY,
        "test",
        "example",
        "default",
        "123456",
        "12345678",
        "letmein",
    }
)
SECRET_FIELDS = ("pg_password", "redis_password", "s3_secret_key", "api_token")


def is_known_default(secret: SecretStr | None) -> bool:
    """Whether ``secret`` is empty-ish or a well-known default value."""
    if secret is None:
        return False
    value = secret.get_secret_value().strip().lower()
    return not value or value in KNOWN_DEFAULT_SECRETS


# range-checked types: a typo in the environment fails at start-up, not hours later
Port = Annotated[int, Field(ge=1, le=65535)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # a rate between 0 and 1
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine (localhost or a loopback address)."""
    return is_loopback_host(urlparse(url).hostname or "")


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def without_password(url: str) -> str:
    """``url`` with its password (if any) left out: what may be printed or logged."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}{host}{port}").geturl()


class Settings(BaseSettings):
    """Every knob of shoplake, read from ``SHOPLAKE_*`` (and a few standard names)."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPLAKE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    profile: Literal["lite", "full"] = "lite"
    data_dir: Path = Path(".shoplake")
    timezone: str = "UTC"
    # where native servers listen; a container sets 0.0.0.0 (its ports are published on
    # the host's loopback only), and PostgreSQL then requires pg_password
    bind_host: str = "127.0.0.1"
    # the name other processes reach this host's servers by (Kafka's advertised listener, a
    # Flink TaskManager's address); a container sets its service name
    advertised_host: str = "127.0.0.1"

    # source database; None means the native PostgreSQL below
    source_dsn: str | None = None
    pg_host: str = "127.0.0.1"
    pg_port: Port = 5434
    pg_user: str = "shoplake"
    pg_password: SecretStr | None = None
    pg_database: str = "shoplake"

    # lake: "s3://" (buckets bronze/silver/gold on the endpoint) or a folder path
    lake_uri: str = "s3://"
    s3_endpoint: str | None = None
    s3_port: Port = 9000
    s3_console_port: Port = 9001
    s3_access_key: str = DEV_S3_ACCESS_KEY
    s3_secret_key: SecretStr = SecretStr(DEV_S3_SECRET_KEY)
    s3_region: str = "us-east-1"
    # "auto": MinIO when it can be built, else SeaweedFS; or force one of them
    s3_server: Literal["auto", "minio", "seaweedfs"] = "auto"

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretStr | None = None  # added to redis_url when it has none
    airflow_port: Port = 8080
    # where the dashboard reaches Airflow's REST API and the recommendation API (a container
    # sets the services' names)
    airflow_host: str = "127.0.0.1"
    api_host: str = "127.0.0.1"
    # the processes ``shoplake up`` runs: the dashboard and the recommendation API
    dashboard_port: Port = 8501
    api_port: Port = 8000
    # full profile: SQL on the lake
    trino_host: str = "127.0.0.1"
    trino_port: Port = 8088
    trino_heap: str = "2560M"
    # full profile: the streaming side. kafka_bootstrap None means the native broker below
    kafka_bootstrap: str | None = None
    kafka_port: Port = 9092
    kafka_controller_port: Port = 9093
    kafka_heap: str = "512M"
    connect_host: str = "127.0.0.1"
    connect_port: Port = 8083
    connect_heap: str = "512M"
    # Debezium's topic.prefix: changes of public.orders go to "<prefix>.public.orders"
    cdc_topic_prefix: str = "cdc"
    alerts_topic: str = "flink-alerts"
    flink_host: str = "127.0.0.1"  # the JobManager: its REST API and its RPC address
    flink_port: Port = 8081  # the JobManager's REST API and web UI
    flink_rpc_port: Port = 6123
    flink_jobmanager_memory: str = "1024m"
    flink_taskmanager_memory: str = "1536m"

    telegram_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SHOPLAKE_TELEGRAM_BOT_TOKEN", "TELEGRAM_BOT_TOKEN"),
    )
    telegram_chat_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SHOPLAKE_TELEGRAM_CHAT_ID", "TELEGRAM_CHAT_ID")
    )
    telegram_api_url: str = "https://api.telegram.org"
    alert_webhook_url: str | None = None
    alert_high_value: Positive = 10000
    alert_max_quantity: Annotated[int, Field(ge=1)] = 50

    reject_rate_warn: Share = 0.10
    reject_rate_fail: Share = 0.50
    # after the medallion validated yesterday (or today): one digest through the alert sinks
    daily_digest: bool = True

    registry: Literal["wandb", "local"] | None = None
    wandb_base_url: str | None = Field(default=None, validation_alias="WANDB_BASE_URL")
    wandb_api_key: SecretStr | None = Field(default=None, validation_alias="WANDB_API_KEY")
    wandb_project: str = Field(default="shoplake", validation_alias="WANDB_PROJECT")
    api_token: SecretStr | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (an IANA name such as UTC)") from None
        return value

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Settings:
        if self.reject_rate_warn > self.reject_rate_fail:
            raise ValueError(
                f"SHOPLAKE_REJECT_RATE_WARN ({self.reject_rate_warn}) is above "
                f"SHOPLAKE_REJECT_RATE_FAIL ({self.reject_rate_fail})"
            )
        return self

    @model_validator(mode="after")
    def _redis_password_in_url(self) -> Settings:
        return self.with_installation_secrets()

    def alert_params(self) -> dict[str, Decimal]:
        """The alert rules' thresholds from these settings, as exact decimals."""
        from jobs.domain.rules import thresholds

        return thresholds(self.alert_high_value, self.alert_max_quantity)

    def installation_secret_file(self, field: str) -> Path:
        """Where this installation keeps a generated secret (owner-only; never printed)."""
        return self.data_path / "secrets" / f"shoplake_{field}"

    def installation_secrets(self) -> tuple[str, ...]:
        """The secrets of native servers this installation runs: generated at their first start."""
        wanted = []
        if self.native_postgres:
            wanted.append("pg_password")
        if is_loopback_url(self.redis_url) and urlparse(self.redis_url).password is None:
            wanted.append("redis_password")
        return tuple(wanted)

    def with_installation_secrets(self) -> Settings:
        """Fill unset native-server passwords from the installation's files; Redis's into its URL.

        A value set in the environment wins. Returns ``self`` (updated in place, so a caller
        holding these settings sees the secrets a first start just generated).
        """
        for field in self.installation_secrets():
            if getattr(self, field) is not None:
                continue
            path = self.installation_secret_file(field)
            try:
                value = path.read_text().strip()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ValueError(f"cannot read the secret in {path}: {exc.strerror}") from None
            if value:
                setattr(self, field, SecretStr(value))
        parts = urlparse(self.redis_url)
        if self.redis_password and parts.password is None:
            secret = quote(self.redis_password.get_secret_value(), safe="")
            self.redis_url = parts._replace(netloc=f":{secret}@{parts.netloc}").geturl()
        return self

    @model_validator(mode="after")
    def _refuse_open_postgres(self) -> Settings:
        if self.native_postgres and not self.binds_loopback and not self.pg_password:
            raise ValueError(
                f"SHOPLAKE_BIND_HOST={self.bind_host} opens PostgreSQL beyond this host: "
                "set SHOPLAKE_PG_PASSWORD"
            )
        return self

    @model_validator(mode="after")
    def _refuse_known_default_secrets(self) -> Settings:
        if self.binds_loopback:
            return self  # generated or development secrets on this host only
        weak = [
            f"SHOPLAKE_{f.upper()}" for f in SECRET_FIELDS if is_known_default(getattr(self, f))
        ]
        if weak:
            raise ValueError(
                f"{', '.join(weak)}: a well-known default value while SHOPLAKE_BIND_HOST="
                f"{self.bind_host} opens the services beyond this host: set a real secret, or "
                "leave it unset and let `shoplake services secrets` generate one"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_secret_off_host(self) -> Settings:
        if (
            self.lake_is_s3
            and self.s3_secret_key.get_secret_value() == DEV_S3_SECRET_KEY
            and not is_loopback_url(self.s3_endpoint_url)
        ):
            raise ValueError(
                "SHOPLAKE_S3_SECRET_KEY is the development default but SHOPLAKE_S3_ENDPOINT "
                f"({self.s3_endpoint_url}) is not on this host: set real credentials"
            )
        return self

    # ---- derived values (one place, so nobody rebuilds them differently) ----
    @property
    def dsn(self) -> str:
        """The source database DSN: the configured one, else the native server."""
        if self.source_dsn:
            return self.source_dsn
        password = (
            f":{quote(self.pg_password.get_secret_value(), safe='')}" if self.pg_password else ""
        )
        return (
            f"postgresql://{self.pg_user}{password}@{self.pg_host}:{self.pg_port}/"
            f"{self.pg_database}?connect_timeout=5"
        )

    @property
    def binds_loopback(self) -> bool:
        return is_loopback_host(self.bind_host)

    @property
    def native_postgres(self) -> bool:
        return self.source_dsn is None

    @property
    def s3_endpoint_url(self) -> str:
        return self.s3_endpoint or f"http://127.0.0.1:{self.s3_port}"

    @property
    def api_url(self) -> str:
        """The recommendation API's base URL (``shoplake serve``)."""
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def airflow_url(self) -> str:
        """Airflow's API server (its UI and REST API)."""
        return f"http://{self.airflow_host}:{self.airflow_port}"

    @property
    def native_s3(self) -> bool:
        return self.lake_is_s3 and self.s3_endpoint is None

    @property
    def lake_is_s3(self) -> bool:
        return self.lake_uri.startswith("s3://")

    @property
    def kafka_bootstrap_servers(self) -> str:
        """The Kafka bootstrap list: the configured one, else the native broker."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def native_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def cdc_topic(self) -> str:
        """Debezium's topic for ``public.orders`` (``cdc.public.orders`` by default)."""
        return f"{self.cdc_topic_prefix}.public.orders"

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def registry_backend(self) -> Literal["wandb", "local"]:
        if self.registry:
            return self.registry
        return "wandb" if self.wandb_api_key else "local"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own ``Settings(...)`` instead.

    ``SHOPLAKE_SECRETS_DIR`` names a folder of secret files, one per setting
    (``shoplake_pg_password``...), as containers receive them.
    """
    secrets_dir = os.environ.get("SHOPLAKE_SECRETS_DIR") or None
    return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
