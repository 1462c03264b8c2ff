"""The Pipeline page: the lake's freshness, the Airflow DAGs' last runs, every service's
health and the served model's quality beside its baselines.

Each section is read by ``jobs.pipeline_status`` in a worker thread of its own, every
``REFRESH_S`` seconds: a slow or absent backend (Airflow not started, the API down) delays
or empties only its own section, which then shows a notice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from nicegui import background_tasks, run, ui

from jobs import pipeline_status as status
from jobs.domain.pipeline_view import (
    DagStatus,
    ModelStatus,
    ServiceHealth,
    age_text,
    lift_lines,
    method_rows,
    overall_health,
)
from jobs.settings import Settings
from web import layout
from web.loading import notice, show

PATH = "/pipeline"
REFRESH_S = 10.0
RUN_COLOURS = {"success": "green-7", "failed": "red-7", "running": "blue-7", "queued": "grey-6"}

FRESH_COLUMNS = [
    {"name": "layer", "label": "Layer", "field": "layer", "align": "left"},
    {"name": "dataset", "label": "Dataset", "field": "dataset", "align": "left"},
    {"name": "day", "label": "Latest day", "field": "day", "align": "left"},
    {"name": "days", "label": "Days", "field": "days", "align": "right"},
    {"name": "written", "label": "Written (local)", "field": "written", "align": "left"},
    {"name": "age", "label": "Age", "field": "age", "align": "left"},
]
FRESH_SLOT = r"""
<q-tr :props="props" :data-testid="'fresh-' + props.row.key">
  <q-td v-for="col in props.cols" :key="col.name" :props="props"
        :data-testid="'fresh-' + col.name">{{ col.value }}</q-td>
</q-tr>
"""
MODEL_COLUMNS = [
    {"name": "label", "label": "Method", "field": "label", "align": "left"},
    {"name": "ndcg", "label": "NDCG@k [95 % CI]", "field": "ndcg", "align": "left"},
    {"name": "recall", "label": "Recall@k [95 % CI]", "field": "recall", "align": "left"},
    {"name": "coverage", "label": "Coverage", "field": "coverage", "align": "right"},
]
MODEL_SLOT = r"""
<q-tr :props="props" :data-testid="'method-' + props.row.method">
  <q-td v-for="col in props.cols" :key="col.name" :props="props"
        :data-testid="'method-' + col.name">{{ col.value }}</q-td>
</q-tr>
"""


def local(when: dt.datetime | None) -> str:
    return "–" if when is None else when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _table(columns: list[dict[str, Any]], slot: str, testid: str, key: str) -> ui.table:
    table = (
        ui.table(columns=columns, rows=[], row_key=key, pagination=0)
        .props(f'flat dense hide-bottom data-testid="{testid}"')
        .classes("w-full")
    )
    table.add_slot("body", slot)
    return table


class PipelinePage:
    """One tab of the Pipeline page."""

    def __init__(self, settings: Settings, refresh_s: float = REFRESH_S) -> None:
        self.settings = settings
        self.busy: set[str] = set()
        self._build()
        ui.timer(refresh_s, self.refresh)
        ui.timer(0.05, self.refresh, once=True)

    def _build(self) -> None:
        right = layout.header(PATH)
        ui.label("Lake freshness, Airflow runs, service health and the served model").classes(
            "px-2 text-sm text-slate-500"
        )
        with right:
            self.updated = (
                ui.label("")
                .props('data-testid="pipeline-updated"')
                .classes("text-sm text-slate-600")
            )
        with ui.grid().classes("w-full gap-4").style("grid-template-columns: 3fr 2fr"):
            with ui.card().classes("shadow-sm"):
                ui.label("Lake freshness").classes("font-medium")
                self.lake_notice = notice("lake-notice")
                self.fresh = _table(FRESH_COLUMNS, FRESH_SLOT, "freshness", "key")
            with ui.card().classes("shadow-sm"):
                with ui.row().classes("w-full items-center justify-between"):
                    ui.label("Services").classes("font-medium")
                    self.health_total = (
                        ui.label("").props('data-testid="services-total"').classes("text-sm")
                    )
                self.services = ui.column().classes("w-full gap-1")
        with ui.grid(columns=2).classes("w-full gap-4"):
            with ui.card().classes("shadow-sm"):
                ui.label("Airflow DAGs").classes("font-medium")
                self.airflow_notice = notice("airflow-notice")
                self.dags = ui.column().classes("w-full gap-2")
            with ui.card().classes("shadow-sm"):
                with ui.row().classes("w-full items-center justify-between"):
                    ui.label("Recommendation model").classes("font-medium")
                    self.model_version = (
                        ui.badge("", color=None)
                        .props('data-testid="model-version"')
                        .classes("px-2 py-1 text-white bg-slate-700")
                    )
                    self.model_version.set_visibility(False)
                self.model_notice = notice("model-notice")
                self.model_head = (
                    ui.label("").props('data-testid="model-head"').classes("text-sm text-slate-600")
                )
                self.methods = _table(MODEL_COLUMNS, MODEL_SLOT, "model-methods", "method")
                self.lifts = ui.column().classes("gap-0").props('data-testid="model-lifts"')

    async def refresh(self) -> None:
        self._section("lake", status.freshness, self._show_freshness)
        self._section("services", status.services, self._show_services)
        self._section("airflow", status.airflow, self._show_airflow)
        self._section("model", status.model, self._show_model)
        self.updated.set_text(f"read {dt.datetime.now().astimezone():%H:%M:%S}")

    def _section(
        self, name: str, read: Callable[[Settings], Any], render: Callable[[Any], None]
    ) -> None:
        """Read one section in a worker thread, unless its previous read is still out."""
        if name in self.busy:
            return
        self.busy.add(name)

        async def go() -> None:
            try:
                found = await run.io_bound(read, self.settings)
                if found is not None:
                    render(found)
            finally:
                self.busy.discard(name)

        background_tasks.create(go(), name=f"pipeline-{name}")

    def _show_freshness(self, found: status.Freshness) -> None:
        now = dt.datetime.now(dt.UTC)
        show(self.lake_notice, found.notice)
        rows = [
            {
                "key": f"{f.layer}-{f.dataset.replace('/', '-')}",
                "layer": f.layer,
                "dataset": f.dataset,
                "day": f.latest_day.isoformat()
                if f.latest_day
                else ("snapshot" if f.present else "–"),
                "days": f.partitions,
                "written": local(f.written_at),
                "age": age_text(f.written_at, now),
            }
            for f in found.layers
        ]
        if rows != self.fresh.rows:
            self.fresh.rows = rows

    def _show_services(self, found: list[ServiceHealth]) -> None:
        up, total = overall_health(found)
        self.health_total.set_text(f"{up} of {total} answering")
        self.services.clear()
        with self.services:
            for s in found:
                with (
                    ui.row()
                    .classes("w-full items-center gap-2 no-wrap")
                    .props(f'data-testid="service-{s.name}"')
                ):
                    ui.badge("up" if s.ok else "down", color="green-7" if s.ok else "red-7").props(
                        f'data-testid="service-{s.name}-state"'
                    ).classes("w-12 justify-center")
                    ui.label(s.name).classes("w-20 font-medium text-sm")
                    ui.label(s.detail).classes("text-sm text-slate-600 truncate").tooltip(s.url)

    def _show_airflow(self, found: status.AirflowStatus) -> None:
        show(self.airflow_notice, found.notice)
        self.dags.clear()
        with self.dags:
            for dag in found.dags:
                self._dag(dag)

    def _dag(self, dag: DagStatus) -> None:
        with ui.column().classes("w-full gap-1").props(f'data-testid="dag-{dag.dag_id}"'):
            with ui.row().classes("items-center gap-2"):
                ui.label(dag.dag_id).classes("text-sm font-medium")
                if dag.paused:
                    ui.badge("paused", color="grey-6")
                elif dag.paused is None:
                    ui.badge("not loaded", color="grey-6")
            with ui.row().classes("items-center gap-1"):
                if not dag.runs:
                    ui.label("no runs yet").classes("text-xs text-slate-500")
                for r in dag.runs:  # newest first
                    when = r.run_after or r.start_date
                    took = f" · {r.duration_s:.0f} s" if r.duration_s is not None else ""
                    ui.badge(
                        f"{r.state} {when.astimezone():%m-%d %H:%M}" if when else r.state,
                        color=RUN_COLOURS.get(r.state, "amber-8"),
                    ).props(f'data-testid="run-{dag.dag_id}"').tooltip(f"{r.run_id}{took}")

    def _show_model(self, found: ModelStatus) -> None:
        show(self.model_notice, found.notice)
        self.model_version.set_visibility(found.version is not None)
        self.model_version.set_text(found.version or "")
        summary = found.summary
        if summary is None:
            self.model_head.set_text(
                f"version {found.version} has no summary (trained before it)"
                if found.version
                else ""
            )
            self.methods.rows = []
            self.lifts.clear()
            return
        self.model_head.set_text(
            f"{summary.model} from {found.source} · {summary.evaluated_customers:,} customers,"
            f" {summary.evaluated_items:,} items evaluated · k = {summary.k}"
        )
        rows = [vars(m) for m in method_rows(summary)]
        if rows != self.methods.rows:
            self.methods.rows = rows
        self.lifts.clear()
        with self.lifts:
            for line in lift_lines(summary):
                ui.label(line).classes("text-sm").props('data-testid="model-lift"')
