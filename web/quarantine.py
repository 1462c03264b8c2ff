"""The Data quality page's browser of one day's quarantined rows, a page at a time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nicegui import ui

from jobs.adapters.lake import Lake
from jobs.domain.quality import QuarantinePage, display_row
from jobs.quality import read_quarantine
from web.loading import LakeReader, Loaded, notice, show

COLUMNS: list[dict[str, Any]] = [
    {"name": c, "label": label, "field": c, "align": "left"}
    for c, label in (
        ("order_id", "Order"),
        ("_reject_reason", "Reason"),
        ("_reject_reasons", "All reasons"),
        ("order_date", "Ordered (UTC)"),
        ("customer_id", "Customer"),
        ("product_name", "Product"),
        ("price", "Price"),
        ("quantity", "Qty"),
        ("total", "Total"),
        ("status", "Status"),
    )
]


def count_text(got: QuarantinePage) -> str:
    """'42 rows quarantined on 2024-03-10 · showing 21–40 (page 2 of 3)'."""
    head = f"{got.total:,} row{'s' if got.total != 1 else ''} quarantined on {got.day}"
    if not got.total:
        return head
    return f"{head} · showing {got.first}–{got.last} (page {got.page + 1} of {got.pages})"


class QuarantineBrowser:
    """A day picker, the day's row count, Previous/Next and the rows of the current page."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.reader = LakeReader()
        self.day: dt.date | None = None
        self.page = 0
        with ui.card().classes("w-full shadow-sm"):
            with ui.row().classes("w-full items-center gap-3 flex-wrap"):
                ui.label("Quarantined rows").classes("font-medium")
                self.day_select = (
                    ui.select([], label="Day", on_change=self._day_chosen)
                    .props('dense outlined data-testid="quarantine-day"')
                    .classes("w-44")
                )
                self.count = ui.label("").props('data-testid="quarantine-count"')
                self.count.classes("text-sm text-slate-600")
                ui.space()
                self.prev = ui.button("Previous", on_click=lambda: self._turn(-1))
                self.prev.props('flat dense no-caps data-testid="quarantine-prev"')
                self.next = ui.button("Next", on_click=lambda: self._turn(1))
                self.next.props('flat dense no-caps data-testid="quarantine-next"')
            self.trouble = notice("quarantine-trouble", "red")
            self.table = (
                ui.table(columns=COLUMNS, rows=[], row_key="_key")
                .props('flat dense hide-pagination data-testid="quarantine-table"')
                .classes("w-full")
            )
            self.table.props(':pagination="{rowsPerPage: 0}"')  # the server pages

    def offer(self, days: list[dt.date]) -> None:
        """The days that can be browsed (a range's validated days); keeps the chosen day
        while it is among them, else takes the newest."""
        self.day_select.set_options([d.isoformat() for d in reversed(days)])
        if self.day not in days:
            self.day, self.page = (days[-1], 0) if days else (None, 0)
        self.day_select.set_value(self.day.isoformat() if self.day else None)

    def select(self, day: str) -> None:
        """Browse ``day`` (ISO) from its first page (the picker's change reads it)."""
        self.day_select.set_value(day)

    async def _day_chosen(self) -> None:
        value = self.day_select.value
        chosen = dt.date.fromisoformat(value) if value else None
        if chosen != self.day:
            self.day, self.page = chosen, 0
            await self.refresh()

    async def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        await self.refresh()

    async def refresh(self) -> None:
        if self.day is not None:
            await self.reader.load(self._read, self._show)
            return
        self.count.set_text("no validated day in this range")
        self.table.rows = []
        self.prev.set_enabled(False)
        self.next.set_enabled(False)

    def _read(self) -> QuarantinePage | None:
        # the day and page when the read starts: a click meanwhile reads again
        return read_quarantine(self.lake, self.day, self.page) if self.day else None

    def _show(self, loaded: Loaded[QuarantinePage | None]) -> None:
        show(self.trouble, loaded.error)
        got = loaded.value
        if loaded.error or got is None:
            return
        self.page = got.page
        self.count.set_text(count_text(got))
        self.prev.set_enabled(got.page > 0)
        self.next.set_enabled(got.page + 1 < got.pages)
        self.table.rows = [
            {**display_row(r), "_key": f"{got.page}-{i}"} for i, r in enumerate(got.rows)
        ]
