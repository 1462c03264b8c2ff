"""DAG ``medallion_postgres_minio_pipeline``: one day of orders, Bronze -> Silver -> Gold.

Each run processes the shop-local day of its logical date (the data interval's start
for scheduled and backfill runs; the date picked for a manual run); every task is one
call into ``jobs.medallion`` and hands the next one a small dict (date, paths, counts).
Re-running or backfilling a day replaces exactly that day's partitions, so catch-up
(``airflow backfill create``) gives the same lake as ``shoplake medallion run``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task
from airflow.sdk.exceptions import AirflowFailException

from jobs.settings import get_settings

log = logging.getLogger(__name__)

SHOP_TZ = get_settings().timezone
# not ``datetime.now()``: a moving start date confuses the scheduler; backfills may start here
START = pendulum.datetime(2024, 1, 1, tz=SHOP_TZ)
RETRIES = {
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
}


def shop_day(when: Any) -> dt.date:
    """The shop-local calendar day of a run's logical date (the partition key)."""
    return pendulum.instance(when).in_timezone(SHOP_TZ).date()


@dag(
    dag_id="medallion_postgres_minio_pipeline",
    description="Daily Bronze -> Silver -> Gold of the orders table, with validation",
    # interval semantics: the run for day D starts once D is over, with D as its key
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=SHOP_TZ),
    start_date=START,
    # the scheduler runs only the latest day; older days on demand, see the module docstring
    catchup=False,
    max_active_runs=3,
    default_args=RETRIES,
    dagrun_timeout=dt.timedelta(hours=2),
    tags=["shoplake", "medallion"],
)
def medallion_postgres_minio_pipeline() -> None:
    @task
    def extract(logical_date: Any = None, data_interval_start: Any = None) -> dict[str, Any]:
        """Source orders of the day -> bronze."""
        from jobs import medallion

        # an asset-triggered run has no logical date; its interval still names the day
        day = shop_day(logical_date or data_interval_start)
        return medallion.extract(get_settings(), day).as_json()

    @task
    def clean(extracted: dict[str, Any]) -> dict[str, Any]:
        """Bronze -> silver and the quarantine."""
        from jobs import medallion

        return medallion.silver(get_settings(), dt.date.fromisoformat(extracted["date"])).as_json()

    @task
    def aggregate(cleaned: dict[str, Any]) -> dict[str, Any]:
        """Silver -> the gold aggregates."""
        from jobs import medallion

        return medallion.gold(get_settings(), dt.date.fromisoformat(cleaned["date"])).as_json()

    @task
    def validate(aggregated: dict[str, Any]) -> dict[str, Any]:
        """The day's report: fails the run above the hard reject limit, warns above the soft."""
        from jobs import medallion

        report = medallion.validate(get_settings(), dt.date.fromisoformat(aggregated["date"]))
        summary = report.summary()
        if report.status == "fail":
            # bad data does not get better by retrying: fail now, skip the retries
            raise AirflowFailException(f"validation failed for {report.date}: {summary}")
        if report.status == "warn":
            log.warning(
                "reject rate %.1f%% above the soft limit %.1f%% on %s",
                100 * report.reject_rate,
                100 * report.thresholds.warn,
                report.date,
            )
        return summary

    validate(aggregate(clean(extract())))


medallion_postgres_minio_pipeline()
