"""Pure ECharts options for the History and Data quality pages (series over days)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from web.charts import PALETTE, STEADY, axis_money

STATUS_COLOURS = {"ok": "#16a34a", "warn": "#f59e0b", "fail": "#dc2626"}


def day_labels(days: list[dt.date]) -> list[str]:
    """``Mar 05`` for each day (the year is in the range picker)."""
    return [d.strftime("%b %d") for d in days]


def _day_axis(days: list[dt.date]) -> dict[str, Any]:
    # ECharts thins the labels of a category axis to the ones that fit; hideOverlap also
    # drops any that would still touch at a narrow width
    return {
        "type": "category",
        "data": day_labels(days),
        "axisLabel": {"hideOverlap": True},
        "axisTick": {"alignWithLabel": True},
    }


def daily_option(days: list[dt.date], revenue: list[float], orders: list[int]) -> dict[str, Any]:
    """Revenue (bars) and orders (line) per day."""
    return {
        **STEADY,
        "color": [PALETTE[0], PALETTE[1]],
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["Revenue", "Orders"], "top": 0},
        "grid": {"left": 8, "right": 8, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": _day_axis(days),
        "yAxis": [axis_money(), {"type": "value", "name": "orders", "alignTicks": True}],
        "series": [
            {"name": "Revenue", "type": "bar", "barMaxWidth": 22, "data": revenue},
            {
                "name": "Orders",
                "type": "line",
                "yAxisIndex": 1,
                "symbolSize": 5,
                "data": orders,
            },
        ],
    }


def aov_option(days: list[dt.date], aov: list[float]) -> dict[str, Any]:
    """Average order value per day."""
    return {
        **STEADY,
        "color": [PALETTE[4]],
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 8, "right": 16, "top": 16, "bottom": 8, "containLabel": True},
        "xAxis": _day_axis(days),
        "yAxis": {**axis_money(), "scale": True, "splitLine": {"show": True}},
        "series": [
            {
                "name": "Average order value",
                "type": "line",
                "symbolSize": 5,
                "areaStyle": {"opacity": 0.06},
                "data": aov,
            }
        ],
    }


def stacked_option(
    days: list[dt.date], series: Mapping[str, Sequence[float]], *, money: bool = True
) -> dict[str, Any]:
    """One stacked bar per day, a segment per key (category, region, reject reason)."""
    return {
        **STEADY,
        "color": PALETTE,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"type": "scroll", "top": 0},
        "grid": {"left": 8, "right": 8, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": _day_axis(days),
        "yAxis": axis_money() if money else {"type": "value", "minInterval": 1},
        "series": [
            {
                "name": key,
                "type": "bar",
                "stack": "total",
                "barMaxWidth": 22,
                "emphasis": {"focus": "series"},
                "data": [round(v, 2) for v in values] if money else values,
            }
            for key, values in series.items()
        ],
    }


def shares(series: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    """Each key's percentage of its day's total (a day without revenue: 0 for every key)."""
    totals = [sum(day) for day in zip(*series.values(), strict=True)] if series else []
    return {
        key: [round(100 * v / t, 2) if t else 0.0 for v, t in zip(values, totals, strict=True)]
        for key, values in series.items()
    }


def mix_option(
    days: list[dt.date], series: Mapping[str, Sequence[float]], *, share: bool
) -> dict[str, Any]:
    """A revenue mix per day: each key's share in % (bars of 100), or its revenue."""
    if not share:
        return stacked_option(days, series)
    option = stacked_option(days, shares(series), money=False)
    option["yAxis"] = {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}}
    option["tooltip"][":valueFormatter"] = "v => v.toFixed(1) + '%'"
    return option


def reject_option(
    days: list[dt.date],
    by_reason: Mapping[str, Sequence[int]],
    rate: list[float],
    warn: float | None,
) -> dict[str, Any]:
    """Rejected rows per reason (stacked bars) and the reject rate (line, %) per day."""
    option = stacked_option(days, by_reason, money=False)
    option["yAxis"] = [
        {"type": "value", "name": "rows", "minInterval": 1},
        {
            "type": "value",
            "name": "reject rate",
            "min": 0,
            "axisLabel": {"formatter": "{value}%"},
            "splitLine": {"show": False},
        },
    ]
    line: dict[str, Any] = {
        "name": "Reject rate",
        "type": "line",
        "yAxisIndex": 1,
        "symbolSize": 5,
        "color": "#0f172a",
        "data": [round(100 * r, 2) for r in rate],
    }
    if warn is not None:
        # the axis reaches the threshold, so that its line shows on a quiet day as well
        option["yAxis"][1][":max"] = f"v => Math.max(v.max, {round(120 * warn, 2)})"
        line["markLine"] = {
            "silent": True,
            "symbol": "none",
            "lineStyle": {"type": "dashed", "color": STATUS_COLOURS["warn"]},
            "label": {"formatter": f"warn {100 * warn:.0f}%", "position": "insideStartTop"},
            "data": [{"yAxis": round(100 * warn, 2)}],
        }
    option["series"].append(line)
    option["legend"] = {"type": "scroll", "top": 0}
    return option
