"""Reading the lake for a page without blocking the event loop, and without hanging the page.

A read runs in NiceGUI's I/O thread pool and is awaited for at most ``TIMEOUT_S``: past that
the page shows a notice and stays responsive (the thread finishes or times out on its own;
the S3 client and DuckDB's httpfs both have their own bounded timeouts). One read per page
at a time: a refresh asked for while one runs follows it (see ``LakeReader.load``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nicegui import run, ui

from jobs.errors import ShoplakeError, first_line

log = logging.getLogger(__name__)

T = TypeVar("T")
TIMEOUT_S = 15.0
REFRESH_S = 60.0  # the lake changes once a medallion run publishes: a minute is fresh enough


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A read's value, or why there is none (``error``: a sentence for the page)."""

    value: T | None
    error: str | None = None


class LakeReader:
    """One read at a time for a page; a refresh asked for meanwhile runs right after it."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.busy = False
        self.pending = False

    async def load(self, fn: Callable[[], T], render: Callable[[Loaded[T]], None]) -> None:
        """``render(fn())``, ``fn`` in a thread. Called while a read runs (a timer tick, the
        range changed), it only marks that one more read is due: ``fn`` reads the page's
        state when it starts, so the last change always wins and reads never pile up."""
        if self.busy:
            self.pending = True
            return
        self.busy = True
        try:
            while True:
                self.pending = False
                render(await self.read(fn))
                if not self.pending:
                    return
        finally:
            self.busy = False

    async def read(self, fn: Callable[[], T]) -> Loaded[T]:
        """``fn()`` in a thread, waited for at most ``timeout_s``; errors become a sentence."""
        try:
            return Loaded(await asyncio.wait_for(run.io_bound(fn), self.timeout_s))
        except TimeoutError:
            return Loaded(None, f"the lake did not answer within {self.timeout_s:.0f} s")
        except ShoplakeError as exc:
            return Loaded(None, f"cannot read the lake: {first_line(exc)}")
        except Exception as exc:  # a page must show a notice, never die on a bad read
            log.warning("reading the lake failed", exc_info=True)
            return Loaded(None, f"reading the lake failed: {first_line(exc)}")


def notice(testid: str, tone: str = "amber") -> ui.label:
    """A hidden full-width notice line, shown with ``set_text`` + ``set_visibility``."""
    label = (
        ui.label("")
        .props(f'data-testid="{testid}"')
        .classes(f"w-full px-3 py-2 rounded bg-{tone}-100 text-{tone}-900 text-sm")
    )
    label.set_visibility(False)
    return label


def show(label: ui.label, text: str | None) -> None:
    """Show ``text`` in a notice, or hide it when None."""
    label.set_text(text or "")
    label.set_visibility(bool(text))


def redraw(chart: ui.echart, option: dict[str, Any]) -> None:
    """Give a chart a whole new option (not merged into the old one)."""
    chart.options.clear()
    chart.options.update(option)
    chart.update()
