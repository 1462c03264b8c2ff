"""Dashboard metrics as pure DuckDB SQL over a relation of today's orders (no I/O).

The orders go through the silver rules first (the same functions as the lake), so
revenue is the repaired ``abs(price) * quantity`` and rejected rows never count;
then only the statuses in ``COUNTED_STATUSES`` count. Totals reuse the gold
aggregates, so a figure means the same thing on the dashboard and in gold.

Each function names its input with DuckDB's ``relation.query(alias, ...)``; two
lazy relations built with the same alias would see the last one registered, so
callers evaluate each result before building the next.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Annotated, Any, Literal

import pyarrow as pa
from duckdb import DuckDBPyRelation
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from jobs.domain import gold, silver

log = logging.getLogger(__name__)

COUNTED_STATUSES = ("completed", "processing")
TOP_N = 10
KPIS = ("total_orders", "total_revenue", "avg_order_value", "unique_customers")


def _ts(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return f"TIMESTAMPTZ '{value.astimezone(dt.UTC).isoformat()}'"


def countable(orders: DuckDBPyRelation) -> DuckDBPyRelation:
    """Silver-clean orders whose status counts on the dashboard."""
    statuses = ", ".join(f"'{s}'" for s in COUNTED_STATUSES)
    return silver.clean(silver.classify(orders)).filter(f"status IN ({statuses})")


def until(rows: DuckDBPyRelation, cutoff: dt.datetime) -> DuckDBPyRelation:
    """The rows ordered before ``cutoff`` (yesterday up to the same clock time)."""
    return rows.filter(f"order_date < {_ts(cutoff)}")


def overall_metrics(
    rows: DuckDBPyRelation, day: dt.date, last_updated: dt.datetime
) -> DuckDBPyRelation:
    """One row of KPIs (gold's daily summary figures) and when they were computed."""
    cols = ", ".join(KPIS)
    return gold.daily_summary(rows, day).project(f"{cols}, {_ts(last_updated)} AS last_updated")


def yesterday_kpis(rows: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """The same KPIs over yesterday's rows so far, as ``yesterday_<kpi>`` columns."""
    return gold.daily_summary(rows, day).project(", ".join(f"{k} AS yesterday_{k}" for k in KPIS))


def with_yesterday(overall: pa.Table, yesterday: pa.Table) -> pa.Table:
    """``overall_metrics`` with the yesterday columns appended (for the change figures)."""
    for name, column in zip(yesterday.column_names, yesterday.columns, strict=True):
        overall = overall.append_column(name, column)
    return overall


def top_products(rows: DuckDBPyRelation, n: int = TOP_N) -> DuckDBPyRelation:
    """The ``n`` products with the most revenue."""
    return rows.query(
        "rows",
        f"""
        SELECT product_name, count(*) AS order_count,
               CAST(sum(quantity) AS BIGINT) AS quantity_sold,
               CAST(sum(total) AS {gold.MONEY}) AS revenue
        FROM rows GROUP BY product_name
        ORDER BY revenue DESC, product_name NULLS LAST LIMIT {int(n)}
        """,
    )


def category_stats(rows: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """Per category: orders, revenue, quantity (gold's category_performance without the date)."""
    return gold.category_performance(rows, day).project("* EXCLUDE (date)")


def regional_stats(rows: DuckDBPyRelation, day: dt.date) -> DuckDBPyRelation:
    """Per region: orders and revenue (gold's regional_performance without the date)."""
    return gold.regional_performance(rows, day).project("* EXCLUDE (date)")


LOCAL_HOUR = "_local_hour"


def with_local_hour(rows: DuckDBPyRelation, tz: str) -> DuckDBPyRelation:
    """``rows`` plus the local hour of ``tz`` each was ordered in (``_local_hour``): kept with
    rows that stay in memory between runs, so a run does not convert every timestamp again."""
    zone = tz.replace("'", "''")
    return rows.project(f"*, CAST(hour(timezone('{zone}', order_date)) AS INTEGER) AS {LOCAL_HOUR}")


def hourly_stats(rows: DuckDBPyRelation, tz: str) -> DuckDBPyRelation:
    """Orders and revenue per local hour of ``tz`` (only hours with orders)."""
    return hourly_by_local_hour(with_local_hour(rows, tz))


def hourly_by_local_hour(rows: DuckDBPyRelation) -> DuckDBPyRelation:
    """``hourly_stats`` of rows that carry their ``_local_hour`` already."""
    return rows.query(
        "rows",
        f"""
        SELECT {LOCAL_HOUR} AS hour,
               count(*) AS order_count, CAST(sum(total) AS {gold.MONEY}) AS revenue
        FROM rows GROUP BY ALL ORDER BY hour
        """,
    )


# ---- the JSON shape published on Redis and rebuilt from the lake ----
def _plain(value: Any) -> Any:
    # JSON for a chart: money as a float rounded to the cent, time as ISO 8601 UTC
    if isinstance(value, Decimal):
        return round(float(value), 2)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """An Arrow table as JSON-ready dicts."""
    return [{k: _plain(v) for k, v in row.items()} for row in table.to_pylist()]


def payload_metrics(
    tables: dict[str, pa.Table], day: dt.date, tz: str, run_id: str
) -> DashboardMetrics:
    """The ``metrics`` object of a ``dashboard:updates`` message (a ValidationError here is a
    bug of the publisher, not bad input)."""
    overall = rows_of(tables["overall_metrics"])
    metrics: dict[str, Any] = {
        "run_id": run_id,
        "date": day.isoformat(),
        "timezone": tz,
        "overall_metrics": overall[0] if overall else {},
    }
    for name in ("top_products", "category_stats", "regional_stats", "hourly_stats"):
        metrics[name] = rows_of(tables[name])
    return DashboardMetrics.model_validate(metrics)


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change in percent, or None when there is nothing to compare with."""
    if current is None or not previous:
        return None
    return (float(current) - float(previous)) / float(previous) * 100.0


# ---- the message on Redis, as a typed model: the publisher checks what it sends with it,
# the dashboard parses what it receives with it (anyone reaching Redis can publish) ----
EVENT: Literal["metrics_updated"] = "metrics_updated"
Count = Annotated[int, Field(ge=0)]
Money = Annotated[float, Field(allow_inf_nan=False)]


class _Part(BaseModel):
    # unknown keys are kept (a newer publisher may add some); known ones must be right
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class OverallMetrics(_Part):
    """Today's KPIs (and yesterday's ``yesterday_*`` beside them, kept as extra keys)."""

    last_updated: AwareDatetime
    total_orders: Count | None = None
    total_revenue: Money | None = None
    avg_order_value: Money | None = None
    unique_customers: Count | None = None

    @field_validator("last_updated", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if not isinstance(value, str):  # a bare number would read as a Unix time
            raise ValueError("last_updated must be an ISO 8601 time")
        return value

    @field_serializer("last_updated")
    def _iso(self, value: dt.datetime) -> str:
        return value.isoformat()  # as published (pydantic would write "Z")


class ProductRow(_Part):
    product_name: str | None
    revenue: Money


class CategoryRow(_Part):
    category: str | None
    revenue: Money


class RegionRow(_Part):
    region: str | None
    revenue: Money
    order_count: Count


class HourRow(_Part):
    hour: Annotated[int, Field(ge=0, le=23)]
    order_count: Count = 0
    revenue: Money = 0.0


class DashboardMetrics(_Part):
    """The ``metrics`` object (also stored alone under ``dashboard:latest_metrics``)."""

    overall_metrics: OverallMetrics
    run_id: str | None = None
    date: str | None = None
    timezone: str | None = None
    top_products: list[ProductRow] = []
    category_stats: list[CategoryRow] = []
    regional_stats: list[RegionRow] = []
    hourly_stats: list[HourRow] = []


class DashboardUpdate(_Part):
    """One ``dashboard:updates`` message."""

    event: Literal["metrics_updated"] = EVENT
    timestamp: str | None = None
    run_id: str | None = None
    metrics: DashboardMetrics

    @property
    def last_updated(self) -> dt.datetime:
        """When the metrics were computed: what orders messages (an instant, not a string)."""
        return self.metrics.overall_metrics.last_updated


def make_update(timestamp: str | None, run_id: str, metrics: DashboardMetrics) -> DashboardUpdate:
    """One ``dashboard:updates`` message: the metrics job's and the one rebuilt from the lake."""
    return DashboardUpdate(event=EVENT, timestamp=timestamp, run_id=run_id, metrics=metrics)


def parse_update(message: Any) -> DashboardUpdate | None:
    """The typed message, or None (logged) when it is not a well-formed update."""
    try:
        return DashboardUpdate.model_validate(message)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
            for e in exc.errors()[:3]
        )
        log.warning("ignored a malformed dashboard message (%s)", where)
        return None


def dump_update(update: DashboardUpdate) -> dict[str, Any]:
    """The message as JSON-ready dicts, as the page reads it."""
    return update.model_dump(mode="json")
