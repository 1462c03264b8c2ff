"""What the dashboard's Pipeline page shows, as typed records and pure shaping: the lake's
freshness per layer, the Airflow DAGs' last runs, every service's health and the served
model's quality beside its baselines. The reads are in ``jobs.pipeline_status``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.domain.reco_summary import ITEMKNN, MODEL, POPULAR, ModelSummary


@dataclass(frozen=True)
class LayerFreshness:
    """The newest output of one lake dataset."""

    layer: str  # bronze | silver | gold | dashboard
    dataset: str  # "<bucket>/<name>"
    latest_day: dt.date | None  # the newest partition (None: a snapshot, or nothing yet)
    written_at: dt.datetime | None  # when that object was written (UTC); None: nothing yet
    partitions: int  # how many days are present (snapshots: 1 when written)

    @property
    def present(self) -> bool:
        return self.written_at is not None


def age_text(when: dt.datetime | None, now: dt.datetime) -> str:
    """'12 s ago', '5 min ago', '3 h ago', '2 d ago' ('–' for never)."""
    if when is None:
        return "–"
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@dataclass(frozen=True)
class DagRun:
    run_id: str
    state: str  # queued | running | success | failed
    run_after: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class DagStatus:
    dag_id: str
    paused: bool | None  # None: the DAG is not (yet) known to Airflow
    runs: tuple[DagRun, ...]  # newest first


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def dag_runs(body: Any) -> tuple[DagRun, ...]:
    """Airflow's ``GET /api/v2/dags/{id}/dagRuns`` reply as runs (malformed entries skipped)."""
    found = body.get("dag_runs") if isinstance(body, Mapping) else None
    runs = []
    for run in found if isinstance(found, list) else []:
        if not isinstance(run, Mapping) or not run.get("dag_run_id"):
            continue
        duration = run.get("duration")
        runs.append(
            DagRun(
                run_id=str(run["dag_run_id"]),
                state=str(run.get("state") or "unknown"),
                run_after=_when(run.get("run_after")),
                start_date=_when(run.get("start_date")),
                end_date=_when(run.get("end_date")),
                duration_s=float(duration) if isinstance(duration, int | float) else None,
            )
        )
    return tuple(runs)


def paused_by_dag(body: Any) -> dict[str, bool]:
    """Airflow's ``GET /api/v2/dags`` reply: dag id -> paused."""
    found = body.get("dags") if isinstance(body, Mapping) else None
    return {
        str(d["dag_id"]): bool(d.get("is_paused"))
        for d in (found if isinstance(found, list) else [])
        if isinstance(d, Mapping) and d.get("dag_id")
    }


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    url: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class MethodRow:
    """One method's test metrics, as the page's table shows them."""

    method: str  # model | popular | itemknn
    label: str
    ndcg: str  # "0.1234 [0.1100, 0.1300]"
    recall: str
    coverage: str


METHOD_LABELS = {MODEL: "the model", POPULAR: "most popular", ITEMKNN: "item kNN"}


def method_rows(summary: ModelSummary) -> list[MethodRow]:
    """The model first, then the baselines."""
    order = [m for m in (MODEL, POPULAR, ITEMKNN) if m in summary.scores]
    order += [m for m in summary.scores if m not in order]
    return [
        MethodRow(
            method=m,
            label=METHOD_LABELS.get(m, m),
            ndcg=summary.scores[m].ndcg.text(),
            recall=summary.scores[m].recall.text(),
            coverage=f"{summary.scores[m].coverage:.1%}",
        )
        for m in order
    ]


def lift_lines(summary: ModelSummary) -> list[str]:
    """'×1.85 [1.60, 2.10] NDCG@10 over most popular', or why there is no ratio."""
    lines = [
        f"×{lift.value:.2f} [{lift.low:.2f}, {lift.high:.2f}] NDCG@{summary.k} over "
        + METHOD_LABELS.get(name, name)
        for name, lift in summary.lifts.items()
    ]
    if not lines:
        lines.append(summary.message or "no comparison with the baselines")
    return lines


@dataclass(frozen=True)
class ModelStatus:
    """The served model (from the API) or, when the API is away, the registry's production."""

    version: str | None
    source: str  # "the API" | "the registry (production)"
    summary: ModelSummary | None
    notice: str | None = None  # the API is not running, no model...


def overall_health(services: Sequence[ServiceHealth]) -> tuple[int, int]:
    """(answering, total)."""
    return sum(1 for s in services if s.ok), len(services)
