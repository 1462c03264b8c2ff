"""The History page: gold revenue, orders and average order value by day, category and region
mix over a date range. Reads ``jobs.history`` in a thread; refreshes in place."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from nicegui import ui

from jobs.adapters.lake import Lake
from jobs.domain.history import History
from jobs.history import read_history
from web import charts, lake_charts, layout
from web.date_range import DateRange, span_text
from web.loading import REFRESH_S, LakeReader, Loaded, notice, redraw, show

PATH = "/history"
NO_GOLD = (
    "The lake has no gold yet: run the medallion for a day (`shoplake medallion run --date "
    "YYYY-MM-DD`, or `shoplake medallion backfill`) and this page fills in."
)
KPIS = (  # (testid, title)
    ("orders", "Orders"),
    ("revenue", "Revenue"),
    ("aov", "Average order value"),
    ("days", "Days with gold"),
)
MIX_MODES = {"share": "Share %", "revenue": "Revenue $"}
TABLE_COLUMNS: list[dict[str, Any]] = [
    {"name": "date", "label": "Day", "field": "date", "align": "left", "sortable": True},
    {"name": "orders", "label": "Orders", "field": "orders", "align": "right"},
    {"name": "revenue", "label": "Revenue", "field": "revenue", "align": "right"},
    {"name": "aov", "label": "Avg order value", "field": "aov", "align": "right"},
]


class HistoryPage:
    """One tab's History page."""

    def __init__(self, lake: Lake, refresh_s: float = REFRESH_S) -> None:
        self.lake = lake
        self.reader = LakeReader()
        self.kpis: dict[str, ui.label] = {}
        self.history: History | None = None  # the last read, for redrawing the mix charts
        self._build()
        ui.timer(refresh_s, self.refresh)
        ui.timer(0, self.refresh, once=True)

    def _build(self) -> None:
        right = layout.header(PATH)
        with right:
            self.updated = ui.label("").props('data-testid="history-updated"')
            self.updated.classes("text-sm text-slate-600")
        with ui.row().classes("w-full items-center justify-between px-2 flex-wrap gap-2"):
            self.subtitle = ui.label("Gold layer · orders of every status")
            self.subtitle.classes("text-sm text-slate-500").props('data-testid="history-range"')
            self.range = DateRange(self.refresh, testid="history-range-control")
        self.trouble = notice("history-trouble", "red")
        self.empty = notice("history-empty")
        with ui.column().classes("w-full gap-4") as self.content:
            with ui.grid(columns=4).classes("w-full gap-4"):
                for key, title in KPIS:
                    with ui.card().classes("shadow-sm"):
                        ui.label(title).classes("text-sm text-slate-500")
                        self.kpis[key] = (
                            ui.label("–")
                            .props(f'data-testid="history-{key}"')
                            .classes("text-3xl font-semibold")
                        )
            with ui.grid(columns=3).classes("w-full gap-4"):
                with ui.card().classes("col-span-2 shadow-sm"):
                    ui.label("Revenue and orders by day").classes("font-medium")
                    self.daily = ui.echart(lake_charts.daily_option([], [], []))
                    self.daily.classes("w-full h-72")
                with ui.card().classes("shadow-sm"):
                    ui.label("Average order value by day").classes("font-medium")
                    self.aov = ui.echart(lake_charts.aov_option([], [])).classes("w-full h-72")
            with ui.grid(columns=2).classes("w-full gap-4"):
                with ui.card().classes("shadow-sm"):
                    with ui.row().classes("w-full items-center justify-between"):
                        ui.label("Category mix").classes("font-medium")
                        self.mix_mode = (
                            ui.toggle(MIX_MODES, value="share", on_change=self._redraw_mix)
                            .props("dense no-caps unelevated toggle-color=blue-8 size=sm")
                            .props('data-testid="mix-mode"')
                            .classes("border rounded text-xs")
                        )
                    self.categories = ui.echart(lake_charts.stacked_option([], {}))
                    self.categories.classes("w-full h-80")
                with ui.card().classes("shadow-sm"):
                    ui.label("Region mix").classes("font-medium")
                    self.regions = ui.echart(lake_charts.stacked_option([], {}))
                    self.regions.classes("w-full h-80")
            with ui.card().classes("w-full shadow-sm"):
                ui.label("By day (newest first)").classes("font-medium")
                self.table = (
                    ui.table(columns=TABLE_COLUMNS, rows=[], row_key="date", pagination=10)
                    .props('flat dense data-testid="history-table"')
                    .classes("w-full")
                )
        self.content.set_visibility(False)

    def _redraw_mix(self) -> None:
        if self.history is None:
            return
        share = self.mix_mode.value == "share"
        for chart, mix in (
            (self.categories, self.history.categories),
            (self.regions, self.history.regions),
        ):
            redraw(chart, lake_charts.mix_option(mix.days, mix.values, share=share))

    async def refresh(self) -> None:
        await self.reader.load(self._read, self._show)

    def _read(self) -> History | None:
        # what the range asks for when the read starts: a change meanwhile reads again
        asked = self.range.asked
        return read_history(self.lake, asked.start, asked.end, asked.last_days)

    def _show(self, loaded: Loaded[History | None]) -> None:
        if loaded.error:
            shown = self.content.visible
            show(self.trouble, loaded.error + (" (showing the last numbers read)" if shown else ""))
            return
        show(self.trouble, None)
        history = loaded.value
        show(self.empty, NO_GOLD if history is None else None)
        self.content.set_visibility(history is not None)
        self.updated.set_text(f"read {dt.datetime.now().astimezone():%H:%M:%S}")
        if history is None:
            return
        self.range.show(history.start, history.end)
        self.subtitle.set_text(
            span_text(history.start, history.end, history.available, "gold in the lake")
            + " · orders of every status"
        )
        self.kpis["orders"].set_text(charts.fmt(history.orders, "int"))
        self.kpis["revenue"].set_text(charts.fmt(float(history.revenue), "money"))
        self.kpis["aov"].set_text(charts.fmt(_float(history.avg_order_value), "money"))
        self.kpis["days"].set_text(f"{len(history.days):,}")
        days = [d.day for d in history.days]
        redraw(
            self.daily,
            lake_charts.daily_option(
                days, [float(d.revenue) for d in history.days], [d.orders for d in history.days]
            ),
        )
        redraw(
            self.aov, lake_charts.aov_option(days, [float(d.avg_order_value) for d in history.days])
        )
        self.history = history
        self._redraw_mix()
        self.table.rows = [
            {
                "date": d.day.isoformat(),
                "orders": charts.fmt(d.orders, "int"),
                "revenue": charts.fmt(float(d.revenue), "money"),
                "aov": charts.fmt(float(d.avg_order_value), "money"),
            }
            for d in reversed(history.days)
        ]


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
