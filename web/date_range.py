"""The date-range control of the lake pages: presets, From/To fields and a range calendar.

Changing any of them calls ``on_change(start, end)`` once the range is complete and valid;
the page then reads the lake again in place. ``show`` puts the range a read used back into
the fields (a default range, or ends the page clamped).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from nicegui import ui

PRESETS = {"7": "7 days", "30": "30 days", "90": "90 days", "all": "All"}
OnChange = Callable[[dt.date, dt.date], Awaitable[None]]


def parse_day(text: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` (or Quasar's ``YYYY/MM/DD``), else None."""
    try:
        return dt.date.fromisoformat((text or "").strip().replace("/", "-"))
    except ValueError:
        return None


def preset_range(
    preset: str, available: tuple[dt.date, dt.date] | None
) -> tuple[dt.date, dt.date] | None:
    """The last N days up to the latest day of the lake, or all of it."""
    if available is None:
        return None
    first, last = available
    if preset == "all":
        return first, last
    return max(first, last - dt.timedelta(days=int(preset) - 1)), last


class DateRange:
    """Presets (7/30/90 days, all), From and To fields, and a calendar to pick a range."""

    def __init__(self, on_change: OnChange, testid: str = "range") -> None:
        self.on_change = on_change
        self.available: tuple[dt.date, dt.date] | None = None
        self.start: dt.date | None = None
        self.end: dt.date | None = None
        with ui.row().classes("items-center gap-2 flex-wrap").props(f'data-testid="{testid}"'):
            self.presets = (
                ui.toggle(PRESETS, value="30", on_change=self._preset)
                .props("dense no-caps unelevated toggle-color=blue-8")
                .props(f'data-testid="{testid}-preset"')
                .classes("border rounded")
            )
            self.from_field = self._field("From", f"{testid}-start")
            self.to_field = self._field("To", f"{testid}-end")
            button = ui.button(icon="event").props("flat dense round").tooltip("Pick a range")
            with button, ui.menu() as self.menu:
                self.calendar = ui.date(on_change=self._picked).props("range")

    def _field(self, label: str, testid: str) -> ui.input:
        field = (
            ui.input(label, placeholder="YYYY-MM-DD")
            .props(f'dense outlined data-testid="{testid}"')
            .classes("w-36")
        )
        field.on("keydown.enter", self._typed)
        field.on("blur", self._typed)
        return field

    def show(self, start: dt.date, end: dt.date, available: tuple[dt.date, dt.date] | None) -> None:
        """Reflect the range a read used (without calling ``on_change``)."""
        self.start, self.end, self.available = start, end, available
        self.from_field.set_value(start.isoformat())
        self.to_field.set_value(end.isoformat())
        self.calendar.set_value({"from": start.isoformat(), "to": end.isoformat()})
        self.presets.set_value(self._matching_preset(start, end))

    def _matching_preset(self, start: dt.date, end: dt.date) -> str | None:
        for key in PRESETS:
            if preset_range(key, self.available) == (start, end):
                return key
        return None

    async def _apply(self, start: dt.date, end: dt.date) -> None:
        if start > end:
            start, end = end, start
        if (start, end) == (self.start, self.end):
            return
        self.start, self.end = start, end
        await self.on_change(start, end)

    async def _preset(self) -> None:
        if self.presets.value not in PRESETS:  # cleared by ``show`` for a range of no preset
            return
        chosen = preset_range(str(self.presets.value), self.available)
        if chosen is not None:
            await self._apply(*chosen)

    async def _typed(self) -> None:
        start, end = parse_day(self.from_field.value), parse_day(self.to_field.value)
        if start and end:
            await self._apply(start, end)

    async def _picked(self) -> None:
        value = self.calendar.value
        if isinstance(value, dict):
            start, end = parse_day(value.get("from")), parse_day(value.get("to"))
        else:  # a single day clicked twice
            start = end = parse_day(value if isinstance(value, str) else None)
        if start and end:
            self.menu.close()
            await self._apply(start, end)
