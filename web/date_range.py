"""The date-range control of the lake pages: presets, From/To fields and a range calendar.

What the user asked for is ``asked``: either fixed ends, or a preset (the last N days the lake
has, or all of it) that follows the lake as new days arrive. Each change calls ``on_change()``
and the page reads the lake again in place; ``show`` puts the range a read resolved into the
fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import ui

from jobs.domain.history import DEFAULT_SPAN_DAYS

PRESETS = {"7": "7 days", "30": "30 days", "90": "90 days", "all": "All"}
PRESET_DAYS: dict[str, int | None] = {"7": 7, "30": 30, "90": 90, "all": None}


@dataclass(frozen=True)
class Ask:
    """A range as asked: ``start`` and ``end``, or else the last ``last_days`` days the lake
    has (None: all of them)."""

    start: dt.date | None = None
    end: dt.date | None = None
    last_days: int | None = DEFAULT_SPAN_DAYS

    @property
    def preset(self) -> str | None:
        """The preset this is, if any."""
        if self.start or self.end:
            return None
        return next((k for k, n in PRESET_DAYS.items() if n == self.last_days), None)


def parse_day(text: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` (or Quasar's ``YYYY/MM/DD``), else None."""
    try:
        return dt.date.fromisoformat((text or "").strip().replace("/", "-"))
    except ValueError:
        return None


def fixed(start: dt.date, end: dt.date) -> Ask:
    """Fixed ends, in order."""
    return Ask(min(start, end), max(start, end))


class DateRange:
    """Presets (7/30/90 days, all), From and To fields, and a calendar to pick a range."""

    def __init__(self, on_change: Callable[[], Awaitable[None]], testid: str = "range") -> None:
        self.on_change = on_change
        self.asked = Ask()
        self.shown: tuple[dt.date, dt.date] | None = None  # the range the page shows
        with ui.row().classes("items-center gap-2 flex-wrap").props(f'data-testid="{testid}"'):
            self.presets = (
                ui.toggle(PRESETS, value=self.asked.preset, on_change=self._preset)
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

    def show(self, start: dt.date, end: dt.date) -> None:
        """Reflect the range a read resolved ``asked`` to (without calling ``on_change``)."""
        self.shown = (start, end)
        self.from_field.set_value(start.isoformat())
        self.to_field.set_value(end.isoformat())
        self.calendar.set_value({"from": start.isoformat(), "to": end.isoformat()})
        self.presets.set_value(self.asked.preset)

    async def _ask(self, ask: Ask) -> None:
        if ask != self.asked:
            self.asked = ask
            await self.on_change()

    async def _preset(self) -> None:
        key = self.presets.value
        if key in PRESET_DAYS:  # None: cleared by ``show`` for fixed ends
            await self._ask(Ask(last_days=PRESET_DAYS[key]))

    async def _typed(self) -> None:
        start, end = parse_day(self.from_field.value), parse_day(self.to_field.value)
        if start and end and (start, end) != self.shown:
            await self._ask(fixed(start, end))

    async def _picked(self) -> None:
        value = self.calendar.value
        if isinstance(value, dict):
            start, end = parse_day(value.get("from")), parse_day(value.get("to"))
        else:  # a single day clicked twice
            start = end = parse_day(value if isinstance(value, str) else None)
        if start and end and (start, end) != self.shown:
            self.menu.close()
            await self._ask(fixed(start, end))


def span_text(
    start: dt.date, end: dt.date, available: tuple[dt.date, dt.date] | None, what: str
) -> str:
    """'Mar 03 – Mar 10, 2024 (gold: Feb 09, 2024 – Mar 10, 2024)'."""
    if start.year == end.year:
        head = f"{start:%b %d} – {end:%b %d, %Y}"
    else:
        head = f"{start:%b %d, %Y} – {end:%b %d, %Y}"
    if available is None:
        return head
    return f"{head} ({what}: {available[0]:%b %d, %Y} – {available[1]:%b %d, %Y})"
