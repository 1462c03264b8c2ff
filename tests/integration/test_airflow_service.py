"""The native Airflow service: starts, runs the DAGs on its own schedule, catches up, stops clean.

One Airflow (all four components) serves the whole module; the tests run in file
order and the last one stops it. Port: SHOPLAKE_TEST_AIRFLOW_PORT (28080; log
servers +713/+714).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from jobs import seed
from jobs.adapters import notify
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    GOLD_DATASETS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    Dataset,
)
from jobs.bootstrap import lake_for
from jobs.settings import Settings
from lite.services import proc
from lite.services.airflow import config as airflow_config
from lite.services.airflow.service import AirflowService, session_members
from tests.support.alerts_runner import wait_for

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("SHOPLAKE_TEST_AIRFLOW_PORT") or 28080)
TODAY = dt.datetime.now(dt.UTC).date()
# clear of yesterday, which the scheduler runs by itself as soon as it starts
DAYS = [TODAY - dt.timedelta(days=n) for n in (4, 3, 2)]
MEDALLION = "medallion_postgres_minio_pipeline"
DATASETS = [BRONZE_ORDERS, SILVER_ORDERS, REJECTED_ORDERS, *GOLD_DATASETS.values()]
RUN_METADATA = ["_ingested_at", "_run_id"]


class Api:
    """The Airflow REST API with the admin's token."""

    def __init__(self, svc: AirflowService) -> None:
        self.base = svc.url
        r = httpx.post(
            f"{self.base}/auth/token",
            timeout=10,
            json={"username": "admin", "password": svc.password()},
        )
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.base}/api/v2{path}", headers=self.headers, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.base}/api/v2{path}", headers=self.headers, json=body, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]


def snapshot(settings: Settings, day: dt.date) -> dict[str, pa.Table]:
    """Every lake table of ``day``, without the per-run columns, in a stable row order."""
    lake = lake_for(settings)
    out = {}
    for ds in DATASETS:
        t = lake.read_table(ds, day)
        t = t.drop_columns([c for c in RUN_METADATA if c in t.column_names])
        keys = [c for c in ("order_id", "category", "region", "date") if c in t.column_names]
        out[f"{ds.bucket}/{ds.name}"] = t.sort_by([(k, "ascending") for k in keys])
    return out


def run_ids(settings: Settings, dataset: Dataset, day: dt.date) -> set[str]:
    return set(lake_for(settings).read_table(dataset, day).column("_run_id").to_pylist())


@pytest.fixture(scope="module")
def source(
    services_settings: Settings,
    s3_settings_module: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Settings]:
    """A fresh source database with five seeded days up to now; a private data dir."""
    admin = services_settings.dsn
    name = f"t_af_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(admin, dbname=name)
    settings = services_settings.model_copy(
        update={
            "source_dsn": dsn,
            "data_dir": tmp_path_factory.mktemp("af-data"),
            "registry": "local",
        }
    )
    seed.seed(settings, days=5, orders_per_day=200, seed=9, end_date=TODAY)
    yield settings
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def s3_settings_module(services_settings: Settings) -> Settings:
    from lite.services.s3 import ensure_buckets

    ensure_buckets(services_settings)
    return services_settings


def by_cli(source: Settings) -> dict[dt.date, dict[str, pa.Table]]:
    """The lake after three ``shoplake medallion run`` calls."""
    env = {**os.environ, **airflow_config.settings_env(source)}
    shoplake = Path(sys.executable).parent / "shoplake"
    for day in DAYS:
        subprocess.run(
            [str(shoplake), "medallion", "run", "--date", day.isoformat()],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return {day: snapshot(source, day) for day in DAYS}


@pytest.fixture(scope="module")
def airflow(source: Settings, redis_pool_settings: Settings) -> Iterator[AirflowService]:
    """The native service on the test port with a fresh metadata database."""
    database = f"airflow_t_{uuid.uuid4().hex[:10]}"
    svc = AirflowService(source, port=PORT, database=database)
    status = svc.start()
    assert status.running, status
    yield svc
    svc.stop()
    with psycopg.connect(source.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def test_starts_on_loopback_with_every_component_healthy(airflow: AirflowService) -> None:
    want = dict.fromkeys(("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy")
    # heartbeats can lag for a moment on a busy machine: healthy within 60 s, not at one instant
    deadline = time.monotonic() + 60
    while (health := airflow.health()) != want and time.monotonic() < deadline:
        time.sleep(2)
    assert health == want
    password = airflow.password()
    assert password and password not in airflow.describe()
    assert f"password in {airflow.home}" in airflow.describe()
    # shoplake writes the password file first, so Airflow never prints the password
    assert password not in airflow.log_file.read_text()

    def listening() -> dict[int, str]:
        found: dict[int, str] = {}
        for p in session_members(airflow.pid() or -1):
            try:  # Airflow's short-lived workers come and go while we look
                conns = p.net_connections("tcp") + p.net_connections("tcp6")
            except psutil.NoSuchProcess:
                continue
            found.update({c.laddr.port: c.laddr.ip for c in conns if c.status == "LISTEN"})
        return found

    # the API server and both log servers (Airflow binds the latter to every interface
    # unless lite.services.airflow.site moves them), and nothing on another interface
    ports = (PORT, *airflow_config.log_ports(PORT))
    # a bound, not a speed target: on a new machine's first start they took over 60 s
    wait_for(lambda: set(ports) <= set(listening()), 240, "the log servers", interval=1)
    assert listening() == dict.fromkeys(ports, "127.0.0.1")
    dags = {d["dag_id"]: d for d in Api(airflow).get("/dags")["dags"]}
    assert set(dags) >= {MEDALLION, "micro_batch_dashboard", "recommendation_training"}
    assert not any(d["is_paused"] for d in dags.values())


def test_runs_the_dashboard_micro_batch_on_its_own_schedule(
    airflow: AirflowService, source: Settings
) -> None:
    api = Api(airflow)

    def two_scheduled_successes() -> list[dict[str, Any]]:
        runs = [
            r
            for r in api.runs("micro_batch_dashboard")
            if r["run_type"] == "scheduled" and r["state"] == "success"
        ]
        return runs if len(runs) >= 2 else []

    runs = wait_for(two_scheduled_successes, 150, "two scheduled micro-batch runs", interval=2)
    starts = sorted(dt.datetime.fromisoformat(r["run_after"]) for r in runs)
    assert (starts[1] - starts[0]).total_seconds() >= 29  # the 30 s timetable, not a burst
    client = notify.client(source.redis_url)
    assert client.get(notify.LAST_UPDATE_KEY) is not None
    # where the API server would fetch a running task's log: the loopback the log server has
    tasks = api.get(f"/dags/micro_batch_dashboard/dagRuns/{runs[0]['dag_run_id']}/taskInstances")
    assert {t["hostname"] for t in tasks["task_instances"]} == {"127.0.0.1"}


def test_the_dashboards_pipeline_status_shows_the_dag_runs(
    airflow: AirflowService, source: Settings
) -> None:
    """The Pipeline page's reader (token from the password file, the DAGs, their latest runs)
    against this Airflow: the same runs, in the same order, as the test's own API calls."""
    from jobs import pipeline_status

    settings = source.model_copy(update={"airflow_port": PORT})
    api = Api(airflow)

    def own() -> dict[str, list[tuple[str, str]]]:
        return {
            dag: [
                (r["dag_run_id"], r["state"])
                for r in api.get(f"/dags/{dag}/dagRuns", limit=5, order_by="-run_after")["dag_runs"]
            ]
            for dag in (MEDALLION, "micro_batch_dashboard", "recommendation_training")
        }

    def between_equal_reads() -> tuple[Any, dict[str, list[tuple[str, str]]]] | None:
        # runs start and finish every 30 s: take a read that lies between two equal ones
        before = own()
        found = pipeline_status.airflow(settings)
        return (found, before) if own() == before else None

    found, expected = wait_for(between_equal_reads, 60, "two equal reads", interval=1)
    assert found.notice is None
    shown = {d.dag_id: [(r.run_id, r.state) for r in d.runs] for d in found.dags}
    assert shown == expected
    assert shown["micro_batch_dashboard"]  # the previous test waited for its runs
    assert all(d.paused is False for d in found.dags)


def test_the_pipeline_page_shows_the_dag_runs_in_a_browser(
    airflow: AirflowService, source: Settings, tmp_path: Path
) -> None:
    """The Pipeline page's Airflow section in Debian's headless Chromium: each DAG's latest
    runs as badges ("success 12-05 08:26"), the same as the test's own API reads."""
    from tests.support.browser import chromium_installed, headless_chromium
    from tests.support.dashboard_server import LAPTOP_WINDOW, running_dashboard
    from tests.support.page_reading import texts

    if not chromium_installed():
        pytest.skip("needs Debian's chromium and chromium-driver")
    api = Api(airflow)
    dags = (MEDALLION, "micro_batch_dashboard", "recommendation_training")

    def own() -> dict[str, list[str]]:
        out = {}
        for dag in dags:
            runs = api.get(f"/dags/{dag}/dagRuns", limit=5, order_by="-run_after")["dag_runs"]
            out[dag] = [
                f"{r['state']} {dt.datetime.fromisoformat(r['run_after']).astimezone():%m-%d %H:%M}"
                for r in runs
            ]
        return out

    settings = source.model_copy(update={"airflow_port": PORT})
    extra = {"SHOPLAKE_AIRFLOW_PORT": str(PORT)}
    with (
        running_dashboard(settings, tmp_path / "dashboard.log", extra) as base,
        headless_chromium([LAPTOP_WINDOW]) as browser,
    ):
        browser.get(f"{base}/pipeline")

        def shown() -> dict[str, list[str]]:
            return {d: texts(browser, f'[data-testid="run-{d}"]') for d in dags}

        # the page reads every 10 s and runs move on every 30 s: wait until both agree
        wait_for(lambda: shown() == own(), 60, "the page's runs to equal the API's", interval=1)
        assert shown()["micro_batch_dashboard"]
        assert texts(browser, '[data-testid="airflow-notice"]') in ([""], [])
        assert texts(browser, '[data-testid="service-airflow-state"]') == ["up"]


def test_catch_up_over_three_days_equals_three_cli_runs(
    airflow: AirflowService, source: Settings
) -> None:
    api = Api(airflow)
    # right before the backfill: the test buckets are shared with other test sessions
    cli = by_cli(source)
    before = {day: run_ids(source, BRONZE_ORDERS, day) for day in DAYS}
    api.post(
        "/backfills",
        {
            "dag_id": MEDALLION,
            "from_date": f"{DAYS[0]}T00:00:00Z",
            "to_date": f"{DAYS[-1]}T00:00:00Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 3,
            "run_backwards": False,
            "dag_run_conf": {},
        },
    )

    def finished() -> list[dict[str, Any]]:
        runs = [r for r in api.runs(MEDALLION) if r["run_type"] == "backfill"]
        done = len(runs) == len(DAYS) and all(r["state"] in ("success", "failed") for r in runs)
        return runs if done else []

    runs = wait_for(finished, 180, "the backfill's three runs", interval=2)
    assert sorted(r["logical_date"][:10] for r in runs) == [d.isoformat() for d in DAYS]
    assert {r["state"] for r in runs} == {"success"}
    for day in DAYS:
        # rewritten by Airflow (new run ids), and equal to what the CLI wrote
        assert run_ids(source, BRONZE_ORDERS, day).isdisjoint(before[day])
        after = snapshot(source, day)
        for name, table in cli[day].items():
            assert after[name].equals(table), f"{name} {day} differs from the CLI's"


def test_stop_leaves_no_process_behind(airflow: AirflowService) -> None:
    pid = airflow.pid()
    assert pid is not None
    status = airflow.stop()
    assert not status.running
    assert session_members(pid) == []
    assert not any(proc.port_open("127.0.0.1", p) for p in airflow.ports())
    assert not airflow.pid_file.exists()
