"""The dashboard page: built once per browser tab, refreshed from the shared state."""

from __future__ import annotations

import datetime as dt
import time

from nicegui import ui

from jobs.domain.dashboard import DashboardMetrics
from web import charts, layout
from web.alerts_health import AlertsHealth
from web.state import LIVE, POLLING, LiveState, View

REFRESH_S = 0.25  # how often each tab looks at the shared state (in-process, cheap)
TONES = {"up": "text-green-700", "down": "text-red-700", "flat": "text-slate-500"}
MODE_STYLE = {LIVE: ("bg-green-600", "Live"), POLLING: ("bg-amber-500", "Polling the lake")}


class DashboardPage:
    """The elements of one tab and how a new metrics message updates them."""

    def __init__(self, state: LiveState, alerts: AlertsHealth | None = None) -> None:
        self.state = state
        self.alerts = alerts
        self.version = -1
        self.kpi_values: dict[str, ui.label] = {}
        self.kpi_deltas: dict[str, ui.label] = {}
        self._build()
        ui.timer(REFRESH_S, self.refresh)

    def _build(self) -> None:
        right = layout.header("/")
        self.subtitle = ui.label("").classes("px-2 text-sm text-slate-500")
        with right:
            self.updated = (
                ui.label("").props('data-testid="last-updated"').classes("text-sm text-slate-600")
            )
            self.badge = (
                ui.badge("Waiting", color=None)
                .props('data-testid="live-indicator"')
                .classes("px-3 py-1 text-white bg-slate-400")
            )
        self.notice = (
            ui.label("")
            .props('data-testid="source-notice"')
            .classes("w-full px-3 py-2 rounded bg-amber-100 text-amber-900 text-sm")
        )
        self.notice.set_visibility(False)
        self.alerts_notice = (
            ui.label("")
            .props('data-testid="alerts-trouble"')
            .classes("w-full px-3 py-2 rounded bg-red-100 text-red-900 text-sm")
        )
        self.alerts_notice.set_visibility(False)
        with ui.grid(columns=4).classes("w-full gap-4"):
            for metric, title, _kind in charts.KPI_CARDS:
                with ui.card().classes("shadow-sm"):
                    ui.label(title).classes("text-sm text-slate-500")
                    self.kpi_values[metric] = (
                        ui.label("–")
                        .props(f'data-testid="kpi-{metric}"')
                        .classes("text-3xl font-semibold")
                    )
                    self.kpi_deltas[metric] = ui.label("").classes("text-xs")
        with ui.grid(columns=3).classes("w-full gap-4"):
            with ui.card().classes("col-span-2 shadow-sm"):
                ui.label("Orders and revenue by hour").classes("font-medium")
                self.hourly = ui.echart(charts.hourly_option([])).classes("w-full h-72")
            with ui.card().classes("shadow-sm"):
                ui.label("Revenue by category").classes("font-medium")
                self.category = ui.echart(charts.category_option([])).classes("w-full h-72")
        with ui.grid(columns=2).classes("w-full gap-4"):
            with ui.card().classes("shadow-sm"):
                ui.label("Top 10 products by revenue").classes("font-medium")
                self.top = ui.echart(charts.top_products_option([])).classes("w-full h-80")
            with ui.card().classes("shadow-sm"):
                ui.label("Regions").classes("font-medium")
                self.regions = ui.echart(charts.regional_option([])).classes("w-full h-80")
        self.run_id = ui.label("").props('data-testid="run-id"').classes("text-xs text-slate-400")

    def refresh(self) -> None:
        view = self.state.view()
        self._status(view)
        trouble = self.alerts.text if self.alerts else None  # dead letters, rejected changes
        self.alerts_notice.set_visibility(bool(trouble))
        self.alerts_notice.set_text(trouble or "")
        if view.version == self.version or view.message is None:
            return
        self.version = view.version
        self._show(view.message.metrics)

    def _status(self, view: View) -> None:
        colour, text = MODE_STYLE.get(view.mode, ("bg-slate-400", "Waiting"))
        self.badge.set_text(f"● {text}")
        self.badge.classes(replace=f"px-3 py-1 text-white {colour}")
        self.notice.set_visibility(view.mode == POLLING or view.message is None)
        self.notice.set_text(
            view.detail
            if view.mode == POLLING
            else "No metrics yet: waiting for the first `shoplake metrics run`."
        )
        if view.message:
            self.updated.set_text(_updated_text(view.message.last_updated))

    def _show(self, metrics: DashboardMetrics) -> None:
        overall = metrics.overall_metrics.model_dump(mode="json")  # with yesterday_* beside
        self.subtitle.set_text(
            f"{metrics.date or ''} · time zone {metrics.timezone}"
            " · statuses completed and processing"
        )
        for metric, _title, kind in charts.KPI_CARDS:
            self.kpi_values[metric].set_text(charts.fmt(overall.get(metric), kind))
            text, tone = charts.delta(overall, metric, kind)
            self.kpi_deltas[metric].set_text(text)
            self.kpi_deltas[metric].classes(replace=f"text-xs {TONES[tone]}")
        rows = metrics.model_dump(mode="json")
        for chart, option in (
            (self.hourly, charts.hourly_option(rows["hourly_stats"])),
            (self.category, charts.category_option(rows["category_stats"])),
            (self.top, charts.top_products_option(rows["top_products"])),
            (self.regions, charts.regional_option(rows["regional_stats"])),
        ):
            chart.options.clear()
            chart.options.update(option)
            chart.update()
        self.run_id.set_text(f"run {metrics.run_id or '?'}")


def _updated_text(when: dt.datetime) -> str:
    age = max(0, int(time.time() - when.timestamp()))
    local = when.astimezone().strftime("%H:%M:%S")
    return f"last updated {local} ({age} s ago)"
