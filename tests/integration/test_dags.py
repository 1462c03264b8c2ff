"""The three DAGs in Airflow itself: DagBag, then ``dag.test()`` on the real PG, S3 and Redis.

The project's .venv has no Airflow, so each check runs a small script with the Airflow
venv's python (``lite.services.airflow.venv``, installed on first use, ~1 min). ``dag.test()``
needs a migrated metadata database: a fresh database on the test PostgreSQL, the
same engine the native service uses (migration takes ~4 s there).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from jobs import medallion, seed
from jobs.adapters import notify
from jobs.adapters.lake.layout import (
    BRONZE_ORDERS,
    DAILY_SUMMARY,
    DASHBOARD_METRICS,
    REJECTED_ORDERS,
    SILVER_ORDERS,
    VALIDATION_REPORT,
)
from jobs.bootstrap import lake_for, registry_for
from jobs.settings import Settings
from lite.services.airflow import config as airflow_config
from lite.services.airflow import venv as airflow_venv

pytestmark = pytest.mark.integration

END = dt.date(2024, 5, 20)
DAY = END - dt.timedelta(days=1)
DAG_IDS = {"medallion_postgres_minio_pipeline", "micro_batch_dashboard", "recommendation_training"}

# runs inside the Airflow venv; prints one line "RESULT <json>"
RUNNER = textwrap.dedent("""
    import datetime as dt, json, sys
    from airflow.dag_processing.dagbag import DagBag

    mode, folder = sys.argv[1], sys.argv[2]
    bag = DagBag(folder)
    if mode == "bag":
        dags = {}
        for dag in bag.dags.values():
            dags[dag.dag_id] = {
                "schedule": repr(dag.timetable), "catchup": dag.catchup,
                "max_active_runs": dag.max_active_runs,
                "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
                "retries": {t.task_id: t.retries for t in dag.tasks},
            }
        out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags}
    else:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        dag = bag.get_dag(sys.argv[3])
        dr = dag.test(logical_date=dt.datetime.fromisoformat(sys.argv[4]))
        with create_session() as s:
            tis = {ti.task_id: [str(ti.state), ti.try_number]
                   for ti in dr.get_task_instances(session=s)}
            xcoms = {x.task_id: x.value for x in s.query(XComModel).filter_by(
                dag_id=dag.dag_id, run_id=dr.run_id, key="return_value")}
        out = {"state": str(dr.state), "tasks": tis, "xcom": xcoms}
    print("RESULT " + json.dumps(out, default=str))
""")


class Airflow:
    """Runs RUNNER in the Airflow venv against one migrated metadata database."""

    def __init__(self, home: Path, database: str) -> None:
        self.home, self.database = home, database
        self.script = home / "runner.py"
        self.script.write_text(RUNNER)

    def env(self, settings: Settings) -> dict[str, str]:
        # the port is unused by dag.test (tasks run in-process), but must be valid
        return airflow_config.airflow_env(settings, self.home, self.database, 58999)

    def run(self, settings: Settings, *args: str, timeout: float = 300) -> dict[str, Any]:
        cmd = [
            str(airflow_venv.python()),
            str(self.script),
            args[0],
            str(airflow_config.DAGS_FOLDER),
            *args[1:],
        ]
        out = subprocess.run(
            cmd,
            env=self.env(settings),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
            check=False,
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        assert out.returncode == 0 and lines, f"runner failed:\n{out.stderr[-4000:]}"
        return json.loads(lines[-1].removeprefix("RESULT "))

    def test_dag(self, settings: Settings, dag_id: str, logical: dt.datetime) -> dict[str, Any]:
        return self.run(settings, "test", dag_id, logical.isoformat())


@pytest.fixture(scope="module")
def airflow(
    services_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Airflow]:
    """Airflow's venv (installed once) and a freshly migrated metadata database."""
    airflow_venv.ensure()
    home = tmp_path_factory.mktemp("airflow-home")
    database = f"airflow_t_{uuid.uuid4().hex[:10]}"
    admin = services_settings.dsn
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    af = Airflow(home, database)
    subprocess.run(
        [str(airflow_venv.bin_dir() / "airflow"), "db", "migrate"],
        env=af.env(services_settings),
        capture_output=True,
        check=True,
        timeout=600,
        cwd=home,
    )
    yield af
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


@pytest.fixture
def settings(pg_settings: Settings, s3_settings: Settings, tmp_path: Path) -> Settings:
    """A fresh source database and emptied buckets; a private data dir (model registry)."""
    return pg_settings.model_copy(update={"data_dir": tmp_path / "data", "registry": "local"})


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def test_dagbag_has_the_three_dags_and_their_graphs(
    airflow: Airflow, services_settings: Settings
) -> None:
    bag = airflow.run(services_settings, "bag")
    assert bag["errors"] == {}
    dags = bag["dags"]
    assert set(dags) == DAG_IDS
    med = dags["medallion_postgres_minio_pipeline"]
    assert med["tasks"] == {
        "extract": ["clean"],
        "clean": ["aggregate"],
        "aggregate": ["validate"],
        "validate": [],
    }
    assert "CronDataIntervalTimetable(expression='0 0 * * *'" in med["schedule"]
    assert all(n >= 1 for n in med["retries"].values())
    dash = dags["micro_batch_dashboard"]
    assert dash["tasks"] == {"refresh_metrics": []}
    assert "delta=datetime.timedelta(seconds=30)" in dash["schedule"]
    assert dash["max_active_runs"] == 1 and dash["catchup"] is False
    train = dags["recommendation_training"]
    assert train["tasks"] == {"wait_for_medallion": ["train"], "train": []}
    # same timetable as the medallion DAG: the sensor pairs runs by logical date
    assert train["schedule"] == med["schedule"]


def test_medallion_dag_fills_the_lake_for_its_logical_date(
    airflow: Airflow, settings: Settings
) -> None:
    seed.seed(settings, days=3, orders_per_day=300, seed=5, end_date=END)
    result = airflow.test_dag(settings, "medallion_postgres_minio_pipeline", midnight(DAY))
    assert result["state"] == "success", result
    x = result["xcom"]
    assert {k: x[k]["date"] for k in x} == dict.fromkeys(x, DAY.isoformat())
    assert x["extract"]["path"] == f"s3://bronze/orders/date={DAY}/data.parquet"
    # the counts passed through XCom are the lake's counts
    lake = lake_for(settings)
    bronze = lake.read_table(BRONZE_ORDERS, DAY).num_rows
    silver = lake.read_table(SILVER_ORDERS, DAY).num_rows
    rejected = lake.read_table(REJECTED_ORDERS, DAY).num_rows
    assert x["extract"]["rows"] == bronze == x["clean"]["bronze"] > 200
    assert (silver, rejected) == (x["clean"]["silver"], x["clean"]["rejected"])
    assert bronze == silver + rejected
    assert lake.read_table(DAILY_SUMMARY, DAY).column("total_orders")[0].as_py() == silver
    report = json.loads(lake.get_bytes(VALIDATION_REPORT.bucket, VALIDATION_REPORT.key(DAY)))
    assert report["status"] == x["validate"]["status"] == "ok"
    assert not lake.has(BRONZE_ORDERS, END)  # one partition per run, nothing else


def test_validate_warns_between_the_limits_and_fails_above_the_hard_one(
    airflow: Airflow, settings: Settings
) -> None:
    seed.seed(settings, days=2, orders_per_day=300, seed=5, end_date=END)
    warn = settings.model_copy(update={"reject_rate_warn": 0.001, "reject_rate_fail": 0.99})
    result = airflow.test_dag(warn, "medallion_postgres_minio_pipeline", midnight(DAY))
    assert result["state"] == "success"
    assert result["xcom"]["validate"]["status"] == "warn"
    assert result["xcom"]["validate"]["reject_rate"] > 0.001

    hard = settings.model_copy(update={"reject_rate_warn": 0.0005, "reject_rate_fail": 0.001})
    result = airflow.test_dag(hard, "medallion_postgres_minio_pipeline", midnight(DAY))
    assert result["state"] == "failed"
    # failed on the first try: retrying cannot make the data better
    assert result["tasks"]["validate"] == ["failed", 1]
    assert result["tasks"]["aggregate"][0] == "success"


def test_dashboard_dag_writes_metrics_and_notifies_redis(
    airflow: Airflow, settings: Settings, redis_pool_settings: Settings
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    seed.seed(settings, days=2, orders_per_day=200, seed=3, end_date=today)
    client = notify.client(settings.redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(notify.CHANNEL)
    pubsub.get_message(timeout=2)  # the subscribe confirmation
    received: list[dict[str, Any]] = []

    def listen() -> None:
        msg = pubsub.get_message(timeout=120, ignore_subscribe_messages=True)
        if msg:
            received.append(json.loads(msg["data"]))

    listener = threading.Thread(target=listen)
    listener.start()
    result = airflow.test_dag(settings, "micro_batch_dashboard", dt.datetime.now(dt.UTC))
    listener.join(timeout=130)
    pubsub.close()
    assert result["state"] == "success"
    out = result["xcom"]["refresh_metrics"]
    assert out["date"] == today.isoformat() and out["subscribers"] >= 1
    assert [m["run_id"] for m in received] == [out["run_id"]]
    assert received[0]["metrics"]["overall_metrics"]["total_orders"] == out["counted"]
    assert client.get(notify.LAST_UPDATE_KEY) is not None
    lake = lake_for(settings)
    for snap in DASHBOARD_METRICS.values():
        assert lake.get_bytes(snap.bucket, snap.key)[:4] == b"PAR1"


def test_training_dag_waits_for_that_days_medallion_run_then_registers(
    airflow: Airflow, settings: Settings
) -> None:
    seed.seed(settings, days=14, orders_per_day=150, seed=11, end_date=END)
    medallion.backfill(settings, END - dt.timedelta(days=13), DAY - dt.timedelta(days=1))
    # the sensor looks for this run: the medallion DAG on the same logical date
    assert (
        airflow.test_dag(settings, "medallion_postgres_minio_pipeline", midnight(DAY))["state"]
        == "success"
    )
    result = airflow.test_dag(settings, "recommendation_training", midnight(DAY))
    assert result["state"] == "success", result
    assert result["tasks"]["wait_for_medallion"][0] == "success"
    out = result["xcom"]["train"]
    assert out["promoted"] is True and "production" in out["aliases"]
    assert out["metrics"]["ndcg@10"] > 0
    assert registry_for(settings).resolve("production") == out["version"]


def test_training_dag_stops_when_that_days_medallion_run_failed(
    airflow: Airflow, settings: Settings
) -> None:
    day = END - dt.timedelta(days=3)
    seed.seed(settings, days=5, orders_per_day=150, seed=11, end_date=END)
    hard = settings.model_copy(update={"reject_rate_warn": 0.0005, "reject_rate_fail": 0.001})
    assert (
        airflow.test_dag(hard, "medallion_postgres_minio_pipeline", midnight(day))["state"]
        == "failed"
    )
    result = airflow.test_dag(settings, "recommendation_training", midnight(day))
    assert result["state"] == "failed"
    assert result["tasks"]["wait_for_medallion"][0] == "failed"
    assert registry_for(settings).resolve("production") is None
