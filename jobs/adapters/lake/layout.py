"""Where every lake dataset lives: the one place that names buckets, keys and partitions.

Both lake backends (S3 and a local folder) and every reader (jobs, ``shoplake sql``)
derive their paths from here, so the layouts cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from fnmatch import fnmatch

PARTITION_RE = re.compile(r"date=(\d{4}-\d{2}-\d{2})/")
STAGING_PREFIX = "_staging"
RUN_ID_TIME = "%Y%m%dT%H%M%SZ"  # a run id starts with its start time (UTC) in this form


@dataclass(frozen=True)
class Dataset:
    """A date-partitioned dataset: ``<bucket>/<name>/date=YYYY-MM-DD/<filename>``."""

    bucket: str
    name: str
    filename: str = "data.parquet"

    def key(self, day: dt.date) -> str:
        """The object key (inside the bucket) of one day's partition."""
        return f"{self.name}/date={day.isoformat()}/{self.filename}"

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    @property
    def glob_key(self) -> str:
        """Key pattern matching every partition (for DuckDB globbing)."""
        return f"{self.name}/date=*/{self.filename}"

    def part_key(self, day: dt.date, part: str) -> str:
        """The key of one part of an appended dataset (``filename`` is a ``part-*`` pattern)."""
        return f"{self.name}/date={day.isoformat()}/{self.filename.replace('*', part)}"

    def day_of(self, key: str) -> dt.date | None:
        """The partition date of a key of this dataset, else None."""
        if not (key.startswith(self.prefix) and fnmatch(key.rsplit("/", 1)[-1], self.filename)):
            return None
        m = PARTITION_RE.search(key[len(self.prefix) - 1 :])
        return dt.date.fromisoformat(m.group(1)) if m else None


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:{RUN_ID_TIME}}-{uuid.uuid4().hex[:8]}"


def run_started(run_id: str) -> dt.datetime | None:
    """When the run of ``run_id`` (from ``new_run_id``) started; None for another form."""
    try:
        return dt.datetime.strptime(run_id.split("-", 1)[0], RUN_ID_TIME).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def staging_key(run_id: str, key: str) -> str:
    """Where a step writes an output before publishing it (same bucket, hidden from globs)."""
    return f"{STAGING_PREFIX}/{run_id}/{key}"


BRONZE_ORDERS = Dataset("bronze", "orders")
SILVER_ORDERS = Dataset("silver", "orders")
REJECTED_ORDERS = Dataset("silver", "orders_rejected")
DAILY_SUMMARY = Dataset("gold", "daily_summary")
CATEGORY_PERFORMANCE = Dataset("gold", "category_performance")
REGIONAL_PERFORMANCE = Dataset("gold", "regional_performance")
VALIDATION_REPORT = Dataset("gold", "validation", "report.json")
# appended in parts, one file per delivered batch of alerts (see part_key)
ALERTS = Dataset("gold", "alerts", "part-*.parquet")

GOLD_DATASETS = {
    "daily_summary": DAILY_SUMMARY,
    "category_performance": CATEGORY_PERFORMANCE,
    "regional_performance": REGIONAL_PERFORMANCE,
}

# SQL view name -> dataset, for `shoplake sql` and anything else that queries the lake
VIEWS = {
    "bronze_orders": BRONZE_ORDERS,
    "silver_orders": SILVER_ORDERS,
    "rejected_orders": REJECTED_ORDERS,
    **GOLD_DATASETS,
}


@dataclass(frozen=True)
class Snapshot:
    """A dataset replaced whole on every run (no partitions): ``<bucket>/<key>``."""

    bucket: str
    key: str


# the live dashboard: today's orders and the five metric tables, rewritten every micro-batch
DASHBOARD_ORDERS_TODAY = Snapshot("gold", "dashboard/orders_today/data.parquet")
DASHBOARD_METRIC_NAMES = (
    "overall_metrics",
    "top_products",
    "category_stats",
    "regional_stats",
    "hourly_stats",
)
DASHBOARD_METRICS = {
    name: Snapshot("gold", f"dashboard/metrics/{name}.parquet") for name in DASHBOARD_METRIC_NAMES
}
