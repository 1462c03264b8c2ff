"""The Data quality page: the medallion's validation reports by day and a browser of the rows it
quarantined. Reads ``jobs.quality`` in threads; refreshes in place."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nicegui import events, ui

from jobs.adapters.lake import Lake
from jobs.domain.quality import Quality
from jobs.quality import read_quality
from web import charts, lake_charts, layout
from web.date_range import DateRange, span_text
from web.loading import REFRESH_S, LakeReader, Loaded, notice, redraw, show
from web.quarantine import QuarantineBrowser

PATH = "/quality"
NO_REPORTS = (
    "No validation report in the lake yet: the medallion writes one per day it runs "
    "(`shoplake medallion run --date YYYY-MM-DD`, or `shoplake medallion backfill`)."
)
KPIS = (  # (testid, title)
    ("days", "Days validated"),
    ("bronze", "Rows extracted (bronze)"),
    ("rejected", "Rows quarantined"),
    ("repaired", "Prices repaired · total mismatches"),
)
DAY_COLUMNS: list[dict[str, Any]] = [
    {"name": "date", "label": "Day", "field": "date", "align": "left", "sortable": True},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "bronze", "label": "Bronze", "field": "bronze", "align": "right"},
    {"name": "rejected", "label": "Rejected", "field": "rejected", "align": "right"},
    {"name": "rate", "label": "Reject rate", "field": "rate", "align": "right"},
    {"name": "reasons", "label": "Reasons", "field": "reasons", "align": "left"},
    {"name": "price", "label": "Prices repaired", "field": "price", "align": "right"},
    {"name": "mismatch", "label": "Total mismatches", "field": "mismatch", "align": "right"},
]
STATUS_SLOT = """
<q-td :props="props">
  <q-badge :color="{ok: 'green-7', warn: 'orange-7', fail: 'red-7'}[props.value] || 'grey'"
           :label="props.value" />
</q-td>
"""


class QualityPage:
    """One tab's Data quality page."""

    def __init__(self, lake: Lake, refresh_s: float = REFRESH_S) -> None:
        self.lake = lake
        self.reader = LakeReader()
        self.kpis: dict[str, ui.label] = {}
        self._build(lake)
        ui.timer(refresh_s, self.refresh)
        ui.timer(0, self.refresh, once=True)

    def _build(self, lake: Lake) -> None:
        right = layout.header(PATH)
        with right:
            self.updated = ui.label("").props('data-testid="quality-updated"')
            self.updated.classes("text-sm text-slate-600")
        with ui.row().classes("w-full items-center justify-between px-2 flex-wrap gap-2"):
            self.subtitle = ui.label("Validation reports of the medallion, one per day")
            self.subtitle.classes("text-sm text-slate-500").props('data-testid="quality-range"')
            self.range = DateRange(self.refresh, testid="quality-range-control")
        self.trouble = notice("quality-trouble", "red")
        self.empty = notice("quality-empty")
        with ui.column().classes("w-full gap-4") as self.content:
            self._build_summary()
            self.quarantine = QuarantineBrowser(lake)
        self.content.set_visibility(False)

    def _build_summary(self) -> None:
        with ui.grid(columns=4).classes("w-full gap-4"):
            for key, title in KPIS:
                with ui.card().classes("shadow-sm"):
                    ui.label(title).classes("text-sm text-slate-500")
                    self.kpis[key] = (
                        ui.label("–")
                        .props(f'data-testid="quality-{key}"')
                        .classes("text-3xl font-semibold")
                    )
                    self.kpis[f"{key}-note"] = ui.label("").classes("text-xs text-slate-500")
        with ui.grid(columns=3).classes("w-full gap-4"):
            with ui.card().classes("col-span-2 shadow-sm"):
                ui.label("Rejected rows by reason, and the reject rate").classes("font-medium")
                self.rejects = ui.echart(lake_charts.reject_option([], {}, [], None))
                self.rejects.classes("w-full h-72")
            with ui.card().classes("shadow-sm"):
                ui.label("Repairs by day").classes("font-medium")
                self.repairs = ui.echart(lake_charts.stacked_option([], {}, money=False))
                self.repairs.classes("w-full h-72")
        with ui.card().classes("w-full shadow-sm"):
            ui.label("Validation by day (newest first; click a day to browse its quarantine)")
            self.days_table = (
                ui.table(columns=DAY_COLUMNS, rows=[], row_key="date", pagination=10)
                .props('flat dense data-testid="quality-table"')
                .classes("w-full cursor-pointer")
            )
            self.days_table.add_slot("body-cell-status", STATUS_SLOT)
            self.days_table.on("rowClick", self._row_clicked)

    # ---- the reports ----
    async def refresh(self) -> None:
        await self.reader.load(self._read, self._show)
        await self.quarantine.refresh()

    def _read(self) -> Quality | None:
        # what the range asks for when the read starts: a change meanwhile reads again
        asked = self.range.asked
        return read_quality(self.lake, asked.start, asked.end, asked.last_days)

    def _show(self, loaded: Loaded[Quality | None]) -> None:
        if loaded.error:
            shown = self.content.visible
            show(self.trouble, loaded.error + (" (showing the last numbers read)" if shown else ""))
            return
        show(self.trouble, None)
        quality = loaded.value
        show(self.empty, NO_REPORTS if quality is None else None)
        self.content.set_visibility(quality is not None)
        self.updated.set_text(f"read {dt.datetime.now().astimezone():%H:%M:%S}")
        if quality is None:
            return
        self.range.show(quality.start, quality.end)
        self.subtitle.set_text(
            span_text(quality.start, quality.end, quality.available, "days validated")
        )
        self._kpis(quality)
        days = [d.day for d in quality.days]
        redraw(
            self.rejects,
            lake_charts.reject_option(
                days,
                quality.reason_series(),
                [d.reject_rate for d in quality.days],
                quality.warn_rate,
            ),
        )
        redraw(
            self.repairs,
            lake_charts.stacked_option(
                days,
                {
                    "Prices repaired": [d.price_repaired for d in quality.days],
                    "Total mismatches": [d.total_mismatch for d in quality.days],
                },
                money=False,
            ),
        )
        self.days_table.rows = [
            {
                "date": d.day.isoformat(),
                "status": d.status if d.consistent else f"{d.status} (layers differ)",
                "bronze": f"{d.bronze:,}",
                "rejected": f"{d.rejected:,}",
                "rate": f"{100 * d.reject_rate:.1f}%",
                "reasons": ", ".join(f"{r} {n}" for r, n in sorted(d.reasons.items())),
                "price": f"{d.price_repaired:,}",
                "mismatch": f"{d.total_mismatch:,}",
            }
            for d in reversed(quality.days)
        ]
        self.quarantine.offer(days)

    def _kpis(self, quality: Quality) -> None:
        counts = quality.status_counts()
        self.kpis["days"].set_text(f"{len(quality.days):,}")
        self.kpis["days-note"].set_text(
            f"{counts['ok']} ok · {counts['warn']} warn · {counts['fail']} fail"
        )
        self.kpis["bronze"].set_text(charts.fmt(quality.bronze, "int"))
        self.kpis["rejected"].set_text(charts.fmt(quality.rejected, "int"))
        self.kpis["rejected-note"].set_text(f"reject rate {100 * quality.reject_rate:.2f}%")
        price = sum(d.price_repaired for d in quality.days)
        mismatch = sum(d.total_mismatch for d in quality.days)
        self.kpis["repaired"].set_text(f"{price:,} · {mismatch:,}")
        self.kpis["repaired-note"].set_text(
            "negative prices made positive · wrong totals recomputed"
        )

    async def _row_clicked(self, e: events.GenericEventArguments) -> None:
        row = e.args[1] if isinstance(e.args, list) and len(e.args) > 1 else None
        if isinstance(row, dict) and row.get("date"):
            self.quarantine.select(row["date"])
