"""The Pipeline page's data: Airflow's replies, ages, the model table, the lake's freshness on
a folder lake, and the notices when Airflow, the API or a service is not running."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import pyarrow as pa
from pydantic import SecretStr

from jobs import pipeline_status as status
from jobs.adapters.lake.folder import FolderLake
from jobs.adapters.lake.layout import BRONZE_ORDERS, DASHBOARD_METRICS, SILVER_ORDERS
from jobs.domain.pipeline_view import (
    age_text,
    dag_runs,
    lift_lines,
    method_rows,
    overall_health,
    paused_by_dag,
)
from jobs.domain.reco_summary import Interval, MethodScore, ModelSummary
from jobs.settings import Settings

NOW = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ages_read_like_a_person_would_say_them() -> None:
    assert age_text(None, NOW) == "–"
    assert age_text(NOW - dt.timedelta(seconds=12), NOW) == "12 s ago"
    assert age_text(NOW - dt.timedelta(minutes=5), NOW) == "5 min ago"
    assert age_text(NOW - dt.timedelta(hours=3), NOW) == "3 h ago"
    assert age_text(NOW - dt.timedelta(days=2), NOW) == "2 d ago"
    assert age_text(NOW + dt.timedelta(seconds=3), NOW) == "0 s ago"  # clocks differ a little


def test_airflow_replies_become_runs_and_malformed_entries_are_skipped() -> None:
    # the shape of Airflow 3's DAGRunCollectionResponse (only what the page reads, plus noise)
    body = {
        "dag_runs": [
            {
                "dag_run_id": "scheduled__2026-12-05T00:00:00+00:00",
                "dag_id": "medallion_postgres_minio_pipeline",
                "state": "success",
                "run_after": "2026-12-05T00:00:00Z",
                "start_date": "2026-12-05T00:00:03.123456+00:00",
                "end_date": "2026-12-05T00:01:03+00:00",
                "duration": 60.0,
                "conf": {},
            },
            {"dag_run_id": "manual__x", "state": "running", "run_after": "not a date"},
            {"state": "failed"},  # no id: skipped
            "junk",
        ],
        "total_entries": 4,
    }
    first, second = dag_runs(body)
    assert (first.state, first.duration_s) == ("success", 60.0)
    assert first.run_after == dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    assert first.start_date is not None and first.start_date.tzinfo is not None
    assert (second.run_id, second.state, second.run_after) == ("manual__x", "running", None)
    assert dag_runs(None) == () and dag_runs({"dag_runs": "x"}) == ()
    dags = {"dags": [{"dag_id": "a", "is_paused": True}, {"dag_id": "b"}, {"x": 1}]}
    assert paused_by_dag(dags) == {"a": True, "b": False}


def summary(lifts: bool) -> ModelSummary:
    def score(v: float) -> MethodScore:
        return MethodScore(
            ndcg=Interval(value=v, low=v - 0.01, high=v + 0.01),
            recall=Interval(value=v * 2, low=v * 2 - 0.02, high=v * 2 + 0.02),
            precision=0.05,
            coverage=0.305,
        )

    return ModelSummary(
        model="als",
        params={},
        k=10,
        protocol="per-customer temporal split",
        evaluated_customers=120 if lifts else 12,
        evaluated_items=40,
        holdout_customers=130,
        unseen_items=2,
        repeat_purchases=1,
        min_customers=50,
        scores={"itemknn": score(0.15), "popular": score(0.1), "model": score(0.2)},
        lifts={"popular": Interval(value=2.0, low=1.5, high=2.5)} if lifts else {},
        message="" if lifts else "only 12 customers evaluated (minimum 50): no lift",
    )


def test_the_model_comes_first_then_the_baselines_with_the_lifts() -> None:
    rows = method_rows(summary(True))
    assert [(r.method, r.label) for r in rows] == [
        ("model", "the model"),
        ("popular", "most popular"),
        ("itemknn", "item kNN"),
    ]
    assert rows[0].ndcg == "0.2000 [0.1900, 0.2100]" and rows[0].coverage == "30.5%"
    assert lift_lines(summary(True)) == ["×2.00 [1.50, 2.50] NDCG@10 over most popular"]
    assert lift_lines(summary(False)) == ["only 12 customers evaluated (minimum 50): no lift"]


def test_freshness_of_a_folder_lake_per_layer(tmp_path: Path) -> None:
    lake = FolderLake(tmp_path)
    table = pa.table({"x": [1]})
    for day in (dt.date(2026, 12, 3), dt.date(2026, 12, 4)):
        lake.write_table(BRONZE_ORDERS, day, table)
    lake.write_table(SILVER_ORDERS, dt.date(2026, 12, 3), table)
    stamp = dt.datetime(2026, 12, 4, 6, 30, tzinfo=dt.UTC).timestamp()
    os.utime(tmp_path / "bronze" / BRONZE_ORDERS.key(dt.date(2026, 12, 4)), (stamp, stamp))
    found = {f.dataset: f for f in status.lake_freshness(lake)}
    bronze = found["bronze/orders"]
    assert (bronze.latest_day, bronze.partitions) == (dt.date(2026, 12, 4), 2)
    assert bronze.written_at == dt.datetime(2026, 12, 4, 6, 30, tzinfo=dt.UTC)
    assert found["silver/orders"].latest_day == dt.date(2026, 12, 3)
    gold = found["gold/daily_summary"]
    assert (gold.latest_day, gold.written_at, gold.present) == (None, None, False)
    assert not found["gold/dashboard/metrics"].present
    snap = DASHBOARD_METRICS["overall_metrics"]
    lake.put_bytes(snap.bucket, snap.key, b"x")
    dashboard = {f.dataset: f for f in status.lake_freshness(lake)}["gold/dashboard/metrics"]
    assert (dashboard.layer, dashboard.present, dashboard.partitions) == ("dashboard", True, 1)


def nothing_running(tmp_path: Path) -> Settings:
    port = closed_port()
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        source_dsn=f"postgresql://shop@127.0.0.1:{port}/shop",
        lake_uri=str(tmp_path / "lake"),
        redis_url=f"redis://127.0.0.1:{port}/0",
        s3_secret_key=SecretStr("not-the-default-secret"),
        airflow_port=port,
        api_port=port,
        registry="local",
    )


def test_absent_backends_are_notices_not_errors(tmp_path: Path) -> None:
    settings = nothing_running(tmp_path)
    airflow = status.airflow(settings)
    assert airflow.dags == [] and "Airflow is not running at" in (airflow.notice or "")
    model = status.model(settings)
    assert model.version is None and "not running" in (model.notice or "")
    assert "no production model: run `shoplake train`" in (model.notice or "")
    health = {s.name: s for s in status.services(settings)}
    assert list(health) == ["postgres", "s3", "redis", "airflow", "api"]
    assert health["s3"].ok  # a folder lake is always there
    for name in ("postgres", "redis", "airflow", "api"):
        assert not health[name].ok, name
    assert overall_health(list(health.values())) == (1, 5)
