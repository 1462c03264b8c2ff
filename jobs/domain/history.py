"""The dashboard's History page as data: gold days shaped into totals, series and mixes (no I/O).

The use case (``jobs.history``) reads the gold views of ``shoplake sql``; everything here is
arithmetic on the rows it got, so the page shows exactly the lake's numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

DEFAULT_SPAN_DAYS = 30  # the range a page opens with: the last 30 days the lake has
OTHER = "(none)"  # the label of a NULL category or region


@dataclass(frozen=True)
class DayKpis:
    """One gold ``daily_summary`` row."""

    day: dt.date
    orders: int
    revenue: Decimal
    avg_order_value: Decimal


@dataclass(frozen=True)
class Mix:
    """Revenue per key (category or region) per day, for a stacked chart.

    ``keys`` by total revenue over the range, largest first; ``values[key][i]`` is the revenue
    of ``key`` on ``days[i]`` (0.0 when the key sold nothing that day).
    """

    days: list[dt.date]
    keys: list[str]
    values: dict[str, list[float]]

    def share(self, key: str) -> float:
        """``key``'s share of the range's revenue, 0..1."""
        total = sum(sum(v) for v in self.values.values())
        return sum(self.values.get(key, [])) / total if total else 0.0


@dataclass(frozen=True)
class History:
    """What the History page shows for one date range."""

    start: dt.date
    end: dt.date
    available: tuple[dt.date, dt.date] | None  # the first and last gold day in the lake
    days: list[DayKpis]
    categories: Mix
    regions: Mix

    @property
    def orders(self) -> int:
        return sum(d.orders for d in self.days)

    @property
    def revenue(self) -> Decimal:
        return sum((d.revenue for d in self.days), Decimal(0))

    @property
    def avg_order_value(self) -> Decimal | None:
        """Revenue over orders of the whole range (not the mean of the daily averages)."""
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None


def default_range(
    available: Sequence[dt.date], last_days: int | None = DEFAULT_SPAN_DAYS
) -> tuple[dt.date, dt.date] | None:
    """The last ``last_days`` calendar days up to the latest day available (None: all of
    them); None when there is no day at all."""
    if not available:
        return None
    last, first = max(available), min(available)
    if last_days is None:
        return first, last
    return max(first, last - dt.timedelta(days=last_days - 1)), last


def clamp_range(
    start: dt.date | None,
    end: dt.date | None,
    available: Sequence[dt.date],
    last_days: int | None = DEFAULT_SPAN_DAYS,
) -> tuple[dt.date, dt.date] | None:
    """A requested range: missing ends from ``default_range(available, last_days)``, swapped
    ends swapped back. None when there is no day at all.

    A range wholly outside the lake is kept as asked (it shows no days rather than silently
    showing others).
    """
    default = default_range(available, last_days)
    if default is None:
        return None
    start = start or default[0]
    end = end or default[1]
    if start > end:
        start, end = end, start
    return start, end


def mix(
    rows: Iterable[tuple[dt.date, str | None, Decimal | float | None]], days: list[dt.date]
) -> Mix:
    """Pivot ``(day, key, revenue)`` rows onto ``days``; keys ordered by total revenue."""
    index = {d: i for i, d in enumerate(days)}
    values: dict[str, list[float]] = {}
    for day, key, revenue in rows:
        if day not in index:
            continue
        series = values.setdefault(key if key is not None else OTHER, [0.0] * len(days))
        series[index[day]] += float(revenue or 0)
    keys = sorted(values, key=lambda k: (-sum(values[k]), k))
    return Mix(days=list(days), keys=keys, values={k: values[k] for k in keys})
