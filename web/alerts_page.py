"""The Alerts page: the latest alerts of the delivery ledger, each sink's delivery state.

The ledger is read in a worker thread every ``REFRESH_S`` seconds (and at once when the rule
filter changes); the page only renders what came back, so a slow or absent database shows a
notice and never blocks the page.
"""

from __future__ import annotations

import datetime as dt
import logging

import psycopg
from nicegui import run, ui

from jobs.alerts.ledger.recent import read_recent
from jobs.domain.alerts_view import AlertsView, SinkTotals
from jobs.errors import first_line
from web import layout

log = logging.getLogger(__name__)

PATH = "/alerts"
REFRESH_S = 3.0
LIMIT = 50
ALL = "__all__"
STATE_COLOURS = {"delivered": "green-7", "pending": "amber-8", "sending": "blue-7", "dead": "red-7"}
COUNTS = (("delivered", "delivered"), ("pending", "pending"), ("dead", "dead-lettered"))
COLUMNS = [
    {"name": "detected_at", "label": "Detected", "field": "detected_at", "align": "left"},
    {"name": "rule", "label": "Rule", "field": "rule", "align": "left"},
    {"name": "severity", "label": "Severity", "field": "severity", "align": "left"},
    {"name": "order_id", "label": "Order", "field": "order_id", "align": "left"},
    {"name": "customer_id", "label": "Customer", "field": "customer_id", "align": "left"},
    {"name": "total", "label": "Total", "field": "total", "align": "right"},
    {"name": "deliveries", "label": "Deliveries", "field": "deliveries", "align": "left"},
]
ROW_SLOT = r"""
<q-tr :props="props" :data-testid="'alert-' + props.row.alert_id">
  <q-td key="detected_at" :props="props">{{ props.row.detected_local }}</q-td>
  <q-td key="rule" :props="props" data-testid="alert-rule">{{ props.row.rule }}</q-td>
  <q-td key="severity" :props="props">{{ props.row.severity }}</q-td>
  <q-td key="order_id" :props="props" data-testid="alert-order">{{ props.row.order_id }}</q-td>
  <q-td key="customer_id" :props="props">{{ props.row.customer_id }}</q-td>
  <q-td key="total" :props="props">{{ props.row.total }}</q-td>
  <q-td key="deliveries" :props="props">
    <q-badge v-for="d in props.row.deliveries" :key="d.sink" :color="d.colour" class="mr-1"
             :data-testid="'delivery-' + d.sink" :title="d.error">
      {{ d.sink }}: {{ d.label }}
    </q-badge>
  </q-td>
</q-tr>
"""


def local_time(iso: str) -> str:
    """A record's UTC ISO time in the dashboard's local time, to the second."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class AlertsPage:
    """One tab of the Alerts page."""

    def __init__(self, dsn: str, refresh_s: float = REFRESH_S) -> None:
        self.dsn = dsn
        self.busy = False
        self.sink_labels: dict[tuple[str, str], ui.label] = {}
        self.sinks_shown: list[str] = []
        self._build()
        ui.timer(refresh_s, self.refresh)
        ui.timer(0.05, self.refresh, once=True)

    def _build(self) -> None:
        right = layout.header(PATH)
        ui.label("Recent alerts and their deliveries · from the alert ledger").classes(
            "px-2 text-sm text-slate-500"
        )
        with right:
            self.updated = (
                ui.label("").props('data-testid="alerts-updated"').classes("text-sm text-slate-600")
            )
        self.notice = (
            ui.label("")
            .props('data-testid="alerts-notice"')
            .classes("w-full px-3 py-2 rounded bg-amber-100 text-amber-900 text-sm")
        )
        self.notice.set_visibility(False)
        self.sinks = ui.grid(columns=4).classes("w-full gap-4")
        with ui.card().classes("w-full shadow-sm"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Latest alerts").classes("font-medium")
                with ui.row().classes("items-center gap-3"):
                    self.count = ui.label("").props('data-testid="alerts-count"').classes("text-sm")
                    self.filter = (
                        ui.select({ALL: "All rules"}, value=ALL, on_change=self.refresh)
                        .props('dense outlined data-testid="rule-filter"')
                        .classes("w-56")
                    )
            self.table = (
                ui.table(columns=COLUMNS, rows=[], row_key="alert_id", pagination=15)
                .props('flat dense data-testid="alerts-table"')
                .classes("w-full")
            )
            self.table.add_slot("body", ROW_SLOT)

    @property
    def rule(self) -> str | None:
        value = self.filter.value
        return None if value in (None, ALL) else str(value)

    async def refresh(self) -> None:
        if self.busy:  # the previous read is still out: skip a beat rather than pile up
            return
        self.busy = True
        try:
            rule = self.rule
            try:
                view = await run.io_bound(read_recent, self.dsn, LIMIT, rule)
            except psycopg.Error as exc:
                log.debug("alerts page: %s", first_line(exc))
                self._notice(f"Cannot read the alert ledger: {first_line(exc)}")
                return
            if view is None or rule != self.rule:  # shutting down, or the filter moved on
                return
            self._show(view)
        finally:
            self.busy = False

    def _notice(self, text: str | None) -> None:
        self.notice.set_visibility(bool(text))
        self.notice.set_text(text or "")

    def _show(self, view: AlertsView) -> None:
        self._notice(
            "No alerts recorded yet: they appear here once `shoplake alerts run` raises some."
            if view.empty
            else None
        )
        self._show_sinks(view.sinks)
        options = {ALL: "All rules"} | {r: r for r in view.rules}
        if self.rule and self.rule not in options:
            options[self.rule] = self.rule
        if options != self.filter.options:
            self.filter.set_options(options, value=self.filter.value)
        what = f"{view.rule} alerts" if view.rule else "alerts"
        shown = min(len(view.alerts), view.total)
        self.count.set_text(f"{view.total:,} {what} · latest {shown} shown")
        rows = []
        for alert in view.alerts:
            row = alert.as_json()
            row["detected_local"] = local_time(row["detected_at"])
            for d in row["deliveries"]:
                d["colour"] = STATE_COLOURS.get(d["state"], "grey-7")
            rows.append(row)
        if rows != self.table.rows:
            self.table.rows = rows
        now = dt.datetime.now().astimezone()
        self.updated.set_text(f"read {now:%H:%M:%S} · every {REFRESH_S:.0f} s")

    def _show_sinks(self, sinks: list[SinkTotals]) -> None:
        names = [s.sink for s in sinks]
        if names != self.sinks_shown:
            self.sinks_shown = names
            self.sink_labels.clear()
            self.sinks.clear()
            with self.sinks:
                for name in names:
                    with ui.card().classes("shadow-sm").props(f'data-testid="sink-{name}"'):
                        ui.label(name).classes("text-sm text-slate-500")
                        with ui.row().classes("gap-6"):
                            for state, label in COUNTS:
                                with ui.column().classes("gap-0"):
                                    self.sink_labels[(name, state)] = (
                                        ui.label("–")
                                        .props(f'data-testid="sink-{name}-{state}"')
                                        .classes("text-2xl font-semibold")
                                    )
                                    ui.label(label).classes("text-xs text-slate-500")
        for s in sinks:
            for state, _label in COUNTS:
                value = getattr(s, state) + (s.sending if state == "pending" else 0)
                shown = self.sink_labels[(s.sink, state)]
                shown.set_text(f"{value:,}")
                if state == "dead":  # a dead letter wants attention
                    shown.classes(
                        replace="text-2xl font-semibold" + (" text-red-700" * bool(value))
                    )
