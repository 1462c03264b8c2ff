"""DAG ``micro_batch_dashboard``: today's dashboard metrics every 30 s, one run at a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import dag, task

from jobs.settings import get_settings


@dag(
    dag_id="micro_batch_dashboard",
    description="Today's KPIs -> gold/dashboard/... and a Redis notification",
    schedule=dt.timedelta(seconds=30),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    # a missed slot is worthless: the next run recomputes today anyway
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=5),
    default_args={"retries": 0, "execution_timeout": dt.timedelta(minutes=4)},
    tags=["shoplake", "dashboard"],
)
def micro_batch_dashboard() -> None:
    @task
    def refresh_metrics() -> dict[str, Any]:
        """One micro-batch: read today's orders, write the metrics, publish to Redis."""
        from jobs import dashboard_metrics

        run = dashboard_metrics.run_once(get_settings())
        return {
            "run_id": run.run_id,
            "date": run.day.isoformat(),
            "orders": run.orders,
            "counted": run.counted,
            "seconds": round(run.seconds, 3),
            "subscribers": run.subscribers,
        }

    refresh_metrics()


micro_batch_dashboard()
