"""The environment Airflow runs in: shoplake's settings as ``SHOPLAKE_*`` plus ``AIRFLOW__*``.

Airflow tasks read shoplake's settings from the environment they inherit, so the
resolved settings (including values that came from ``.env`` or defaults relative to
the current folder) are exported explicitly: a task sees exactly what the caller saw.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import psycopg
from pydantic import AliasChoices, SecretStr

from jobs.config_files import config_path
from jobs.settings import Settings
from lite.services.airflow import site as airflow_site
from lite.services.airflow import venv as airflow_venv

SHARED_ENV_FILE = config_path("airflow", "airflow.env")
DAGS_FOLDER = airflow_venv.REPO / "dags"
# Airflow's log servers (8793, 8794 next to 8080) follow the API port, so two
# instances (a developer's and the tests') do not collide
WORKER_LOG_OFFSET, TRIGGER_LOG_OFFSET = 713, 714


def log_ports(port: int) -> tuple[int, int]:
    """The worker and triggerer log servers' ports for an API server on ``port``."""
    return port + WORKER_LOG_OFFSET, port + TRIGGER_LOG_OFFSET


def env_name(field: str) -> str:
    """The environment variable Settings reads ``field`` from (its first alias, if any)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"SHOPLAKE_{field.upper()}"


def settings_env(settings: Settings) -> dict[str, str]:
    """Every set value of ``settings`` under the variable name Settings reads it from."""
    env: dict[str, str] = {}
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = value.expanduser().resolve()  # a task's working folder is not ours
        env[env_name(field)] = str(value)
    return env


def metadata_url(settings: Settings, database: str) -> str:
    """A SQLAlchemy URL (psycopg 3, sync and async alike) for ``database`` on the source server."""
    info = psycopg.conninfo.conninfo_to_dict(settings.dsn)
    user = quote(str(info.get("user") or "postgres"), safe="")
    password = info.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host, port = info.get("host") or "127.0.0.1", info.get("port") or 5432
    return f"postgresql+psycopg://{auth}@{host}:{port}/{database}"


def shared_env() -> dict[str, str]:
    """The ``KEY=VALUE`` lines of config/airflow/airflow.env (comments and blanks skipped)."""
    lines = SHARED_ENV_FILE.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def airflow_env(settings: Settings, home: Path, database: str, port: int) -> dict[str, str]:
    """The full environment of an Airflow process serving shoplake's DAGs."""
    env = {**shared_env(), **os.environ, **settings_env(settings)}
    url = metadata_url(settings, database)
    worker_logs, trigger_logs = log_ports(port)
    base_url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            # no asyncpg in the venv: psycopg 3 serves the async engine too
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url,
            "AIRFLOW__API__HOST": settings.bind_host,
            "AIRFLOW__API__PORT": str(port),
            # tasks reach the execution API here; it must match the API server's address
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs),
            # the log servers bind every interface unless lite.services.airflow.site moves them;
            # their address as components announce it must then be the same
            airflow_site.BIND_HOST_ENV: settings.bind_host,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "lite.services.airflow.site.loopback_hostname",
            # standalone starts its components as `airflow ...` from PATH
            "PATH": f"{airflow_venv.bin_dir()}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(airflow_venv.venv_dir()),
            # the venv is shared by checkouts: this one's jobs/, lite/ and dags/ come first
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(airflow_venv.REPO), env.get("PYTHONPATH", "")) if p
            ),
        }
    )
    env.pop("PYTHONHOME", None)
    return env
