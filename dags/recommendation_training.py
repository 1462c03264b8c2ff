"""DAG ``recommendation_training``: retrain the recommender once that day's lake is validated.

It runs on the medallion DAG's timetable and waits for the medallion run of the same
logical date (an ExternalTaskSensor rather than an asset trigger) because:
training is tied to a calendar day, a catch-up of N medallion days must not retrain
N times (this DAG does not catch up), and a day whose validation failed must stop
training instead of merely not triggering it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import CronDataIntervalTimetable, dag, task

from jobs.settings import get_settings

SHOP_TZ = get_settings().timezone
MEDALLION_DAG_ID = "medallion_postgres_minio_pipeline"


@dag(
    dag_id="recommendation_training",
    description="ALS factors from Silver -> evaluation -> model registry (W&B or local)",
    # the same timetable as the medallion DAG, so both runs of a day share the logical date
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=SHOP_TZ),
    start_date=pendulum.datetime(2024, 1, 1, tz=SHOP_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5)},
    tags=["shoplake", "recommendations"],
)
def recommendation_training() -> None:
    wait = ExternalTaskSensor(
        task_id="wait_for_medallion",
        external_dag_id=MEDALLION_DAG_ID,
        external_task_id="validate",
        allowed_states=["success"],
        failed_states=["failed", "upstream_failed", "skipped"],
        # a failed day needs a person, not another poke: fail at once, no retry
        retries=0,
        # reschedule: a waiting sensor gives its worker slot back between pokes
        mode="reschedule",
        poke_interval=60,
        timeout=int(dt.timedelta(hours=6).total_seconds()),
    )

    @task
    def train() -> dict[str, Any]:
        """Train on every Silver day, evaluate, register; promotion per the registry policy."""
        from jobs import training

        result = training.train(get_settings())
        reg = result.registration
        return {
            "version": reg.version,
            "aliases": reg.aliases,
            "promoted": reg.promoted,
            "reason": reg.reason,
            "metrics": {
                k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)
            },
        }

    wait >> train()


recommendation_training()
