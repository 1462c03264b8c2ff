"""Airflow's REST API (v2, Airflow 3) for the dashboard: the DAGs and their latest runs.

Airflow runs with the simple auth manager; its admin password is in the file the native
service writes under ``<data>/services/airflow`` (``PASSWORD_FILE``). A token from
``POST /auth/token`` is sent as a bearer token. Short timeouts: ``ServiceUnavailable`` when
nothing answers or no password is found, ``RestError`` for an error status.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jobs.adapters.rest import Rest
from jobs.domain.pipeline_view import DagStatus, dag_runs, paused_by_dag
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings

# the simple auth manager's password file, in AIRFLOW_HOME (written by lite's service first)
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"
DAG_IDS = ("medallion_postgres_minio_pipeline", "micro_batch_dashboard", "recommendation_training")
TIMEOUT_S = 3.0
HINT = "start it with `shoplake services start airflow` (or `shoplake up`)"


def airflow_home(settings: Settings) -> Path:
    """Where the native Airflow keeps its home (and the password file)."""
    return settings.data_path / "services" / "airflow"


def admin_password(settings: Settings, user: str = "admin") -> str | None:
    try:
        users = json.loads((airflow_home(settings) / PASSWORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    found = users.get(user) if isinstance(users, dict) else None
    return str(found) if found else None


class AirflowApi:
    def __init__(self, settings: Settings, timeout: float = TIMEOUT_S) -> None:
        self.settings = settings
        self.rest = Rest("Airflow", settings.airflow_url, hint=HINT, timeout=timeout)
        self._headers: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return self.rest.base_url

    def health(self) -> dict[str, str]:
        """Each component's status (``/api/v2/monitor/health``, no login needed)."""
        body = self.rest.get("/api/v2/monitor/health")
        if not isinstance(body, dict):
            return {}
        return {
            name: str(part.get("status"))
            for name, part in body.items()
            if isinstance(part, dict) and "status" in part
        }

    def _auth(self) -> dict[str, str]:
        if self._headers is None:
            password = admin_password(self.settings)
            if password is None:
                where = airflow_home(self.settings) / PASSWORD_FILE
                raise ServiceUnavailable(f"Airflow's admin password is not in {where}")
            body = self.rest.call(
                "POST", "/auth/token", body={"username": "admin", "password": password}
            )
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                raise ServiceUnavailable(f"Airflow at {self.url} gave no access token")
            self._headers = {"Authorization": f"Bearer {token}"}
        return self._headers

    def get(self, path: str) -> Any:
        return self.rest.get(f"/api/v2{path}", headers=self._auth())

    def dags(self, dag_ids: tuple[str, ...] = DAG_IDS, runs: int = 5) -> list[DagStatus]:
        """Each DAG's paused flag and latest ``runs`` runs, newest first."""
        paused = paused_by_dag(self.get("/dags?limit=100"))
        return [
            DagStatus(
                dag_id=dag_id,
                paused=paused.get(dag_id),
                runs=dag_runs(
                    self.get(
                        f"/dags/{quote(dag_id, safe='')}/dagRuns?limit={runs}&order_by=-run_after"
                    )
                ),
            )
            for dag_id in dag_ids
        ]
