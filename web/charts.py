"""Pure view-model code for the dashboard: KPI text and ECharts options from a metrics dict."""

from __future__ import annotations

from typing import Any

from jobs.domain.dashboard import change

PALETTE = [
    "#2563eb",
    "#16a34a",
    "#f59e0b",
    "#db2777",
    "#7c3aed",
    "#0891b2",
    "#ea580c",
    "#65a30d",
    "#dc2626",
    "#475569",
]
KPI_CARDS = (  # (metric, title, kind)
    ("total_orders", "Orders", "int"),
    ("total_revenue", "Revenue", "money"),
    ("avg_order_value", "Average order value", "money"),
    ("unique_customers", "Unique customers", "int"),
)


def fmt(value: float | int | None, kind: str) -> str:
    """A KPI value for humans: ``1,234`` or ``$1,234.56``."""
    if value is None:
        return "–"
    return f"${float(value):,.2f}" if kind == "money" else f"{int(value):,}"


def delta(overall: dict[str, Any], metric: str, kind: str) -> tuple[str, str]:
    """The change against the same time yesterday: (text, tone) with tone up | down | flat."""
    now, before = overall.get(metric), overall.get(f"yesterday_{metric}")
    pct = change(now, before)
    if pct is None:
        return f"no orders by this time yesterday ({fmt(before, kind)})", "flat"
    arrow, tone = ("▲", "up") if pct > 0.05 else ("▼", "down") if pct < -0.05 else ("■", "flat")
    return f"{arrow} {abs(pct):.1f}% vs same time yesterday ({fmt(before, kind)})", tone


# Charts whose data changes in place: without update animations an axis whose scale changes
# jumps to its new labels (animated, the old and new labels overlapped for a second, which is
# what a screenshot or a glance caught).
STEADY: dict[str, Any] = {"animationDurationUpdate": 0}
# a JavaScript function (a key with NiceGUI's ":" prefix is evaluated): $950, $1.2k, $1.5M
MONEY_AXIS_FORMATTER = (
    "v => Math.abs(v) >= 1e6 ? '$' + +(v / 1e6).toFixed(1) + 'M'"
    " : Math.abs(v) >= 1e3 ? '$' + +(v / 1e3).toFixed(1) + 'k' : '$' + v"
)


def axis_money() -> dict[str, Any]:
    """A value axis of dollars, compact (``$12k``) so that its labels never crowd the chart."""
    return {
        "type": "value",
        "axisLabel": {":formatter": MONEY_AXIS_FORMATTER},
        "splitLine": {"show": False},
    }


def hourly_option(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Orders (bars) and revenue (line) for each local hour 00..23."""
    by_hour = {int(r["hour"]): r for r in rows}
    hours = list(range(24))
    return {
        **STEADY,
        "color": PALETTE,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["Orders", "Revenue"], "top": 0},
        "grid": {"left": 48, "right": 64, "top": 32, "bottom": 28},
        "xAxis": {"type": "category", "data": [f"{h:02d}" for h in hours]},
        "yAxis": [{"type": "value", "name": "orders"}, {**axis_money(), "alignTicks": True}],
        "series": [
            {
                "name": "Orders",
                "type": "bar",
                "barMaxWidth": 18,
                "data": [by_hour.get(h, {}).get("order_count", 0) for h in hours],
            },
            {
                "name": "Revenue",
                "type": "line",
                "yAxisIndex": 1,
                "smooth": True,
                "symbolSize": 4,
                "areaStyle": {"opacity": 0.08},
                "data": [by_hour.get(h, {}).get("revenue", 0) for h in hours],
            },
        ],
    }


def top_products_option(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars of revenue, the best product on top."""
    ordered = list(reversed(rows))
    return {
        **STEADY,
        "color": [PALETTE[0]],
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "grid": {"left": 8, "right": 56, "top": 8, "bottom": 8, "containLabel": True},
        "xAxis": axis_money(),
        "yAxis": {
            "type": "category",
            "data": [r["product_name"] or "?" for r in ordered],
            "axisLabel": {"width": 170, "overflow": "truncate"},
        },
        "series": [
            {
                "name": "Revenue",
                "type": "bar",
                "barMaxWidth": 16,
                "label": {"show": True, "position": "right", "formatter": "{c}"},
                "data": [r["revenue"] for r in ordered],
            }
        ],
    }


def category_option(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A donut of revenue by category."""
    return {
        **STEADY,
        "color": PALETTE,
        "tooltip": {"trigger": "item", "formatter": "{b}: ${c} ({d}%)"},
        "legend": {"type": "scroll", "orient": "vertical", "right": 0, "top": "middle"},
        "series": [
            {
                "name": "Revenue",
                "type": "pie",
                "radius": ["45%", "72%"],
                "center": ["38%", "50%"],
                "label": {"show": False},
                "itemStyle": {"borderColor": "#fff", "borderWidth": 2},
                "data": [{"name": r["category"] or "?", "value": r["revenue"]} for r in rows],
            }
        ],
    }


def regional_option(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Revenue (bars) and orders (line) per region."""
    return {
        **STEADY,
        "color": [PALETTE[1], PALETTE[2]],
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["Revenue", "Orders"], "top": 0},
        # containLabel: a region's name wrapped on two lines gets the height it needs (the
        # second line used to run into the first at a laptop's width)
        "grid": {"left": 8, "right": 8, "top": 32, "bottom": 8, "containLabel": True},
        "xAxis": {
            "type": "category",
            "data": [r["region"] or "?" for r in rows],
            "axisLabel": {"interval": 0, "width": 90, "overflow": "break", "lineHeight": 14},
        },
        "yAxis": [axis_money(), {"type": "value", "name": "orders", "alignTicks": True}],
        "series": [
            {
                "name": "Revenue",
                "type": "bar",
                "barMaxWidth": 36,
                "data": [r["revenue"] for r in rows],
            },
            {
                "name": "Orders",
                "type": "line",
                "yAxisIndex": 1,
                "data": [r["order_count"] for r in rows],
            },
        ],
    }
