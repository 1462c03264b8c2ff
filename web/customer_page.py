"""The Customer page: a customer's latest orders and recommendations, a product's neighbours.

Orders come from the source database, recommendations and similar products from the running
recommendation API over HTTP (``jobs.lookups``), in a worker thread with short timeouts: when
the API is not running the page says so and still shows the orders.
"""

from __future__ import annotations

from typing import Any

from nicegui import run, ui

from jobs import lookups
from jobs.adapters.reco_api import RecoApi
from jobs.domain.reco_view import CustomerHistory, RecoItem, money
from web import layout

PATH = "/customer"
NOTICE = "w-full px-3 py-2 rounded bg-amber-100 text-amber-900 text-sm"

ORDER_COLUMNS = [
    {"name": "order_id", "label": "Order", "field": "order_id", "align": "left"},
    {"name": "ordered_at", "label": "Date (UTC)", "field": "ordered_at", "align": "left"},
    {"name": "product_name", "label": "Product", "field": "product_name", "align": "left"},
    {"name": "quantity", "label": "Qty", "field": "quantity", "align": "right"},
    {"name": "total", "label": "Total", "field": "total", "align": "right"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
]
ORDER_SLOT = r"""
<q-tr :props="props" :data-testid="'order-' + props.row.order_id">
  <q-td v-for="col in props.cols" :key="col.name" :props="props"
        :data-testid="'order-' + col.name"
        :class="col.name === 'product_name' ? 'whitespace-normal' : ''">{{ col.value }}</q-td>
</q-tr>
"""
ITEM_COLUMNS = [
    {"name": "rank", "label": "#", "field": "rank", "align": "right"},
    {"name": "product_name", "label": "Product", "field": "product_name", "align": "left"},
    {"name": "category", "label": "Category", "field": "category", "align": "left"},
    {"name": "score", "label": "Score", "field": "score", "align": "right"},
    {"name": "reason", "label": "Why", "field": "reason", "align": "left"},
]
ITEM_SLOT = r"""
<q-tr :props="props" :data-testid="'{prefix}-' + props.row.rank"
      :data-product-id="props.row.product_id">
  <q-td v-for="col in props.cols" :key="col.name" :props="props"
        :data-testid="'{prefix}-' + col.name" class="whitespace-normal">{{ col.value }}</q-td>
</q-tr>
"""


def item_rows(items: list[RecoItem], score: str) -> list[dict[str, Any]]:
    """Ranked items as table rows; ``score`` names the number shown (score or similarity)."""
    rows = []
    for rank, item in enumerate(items, start=1):
        value = getattr(item, score)
        rows.append(
            {
                "rank": rank,
                "product_id": item.product_id,
                "product_name": item.product_name,
                "category": item.category,
                "score": "" if value is None else f"{value:.3f}",
                "reason": item.reason,
            }
        )
    return rows


def order_rows(history: CustomerHistory) -> list[dict[str, Any]]:
    return [
        {
            "order_id": o.order_id,
            "ordered_at": f"{o.ordered_at:%Y-%m-%d %H:%M}" if o.ordered_at else "",
            "product_name": o.product_name or "",
            "quantity": "" if o.quantity is None else o.quantity,
            "total": money(o.total),
            "status": o.status or "",
        }
        for o in history.orders
    ]


def _table(columns: list[dict[str, Any]], slot: str, testid: str, key: str) -> ui.table:
    table = (
        ui.table(columns=columns, rows=[], row_key=key, pagination=0)
        .props(f'flat dense hide-bottom data-testid="{testid}"')
        .classes("w-full")
    )
    table.add_slot("body", slot)
    return table


class CustomerPage:
    """One tab of the Customer page."""

    def __init__(self, dsn: str, api_url: str) -> None:
        self.dsn = dsn
        self.api = RecoApi(api_url)
        self._build()

    def _build(self) -> None:
        layout.header(PATH)
        ui.label(
            "A customer's orders (source database) and recommendations, a product's"
            f" neighbours (recommendation API at {self.api.url})"
        ).classes("px-2 text-sm text-slate-500")
        self.notice = ui.label("").props('data-testid="api-notice"').classes(NOTICE)
        self.notice.set_visibility(False)
        # the orders' ids and dates do not wrap: their card gets the wider half
        with ui.grid().classes("w-full gap-4").style("grid-template-columns: 7fr 6fr"):
            with ui.card().classes("shadow-sm"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label("Customer").classes("font-medium")
                    self.customer_input = (
                        ui.input(placeholder="customer id, e.g. CUST-000042")
                        .props('dense outlined clearable data-testid="customer-input"')
                        .classes("w-64")
                        .on("keydown.enter", self.look_up_customer)
                    )
                    ui.button("Look up", on_click=self.look_up_customer).props(
                        'unelevated no-caps data-testid="customer-lookup"'
                    )
                self.profile = (
                    ui.label("Enter a customer id to see their orders and recommendations.")
                    .props('data-testid="customer-profile"')
                    .classes("text-sm text-slate-600")
                )
                self.orders_title = (
                    ui.label("").props('data-testid="customer-order-count"').classes("text-sm")
                )
                self.orders = _table(ORDER_COLUMNS, ORDER_SLOT, "customer-orders", "order_id")
            with ui.card().classes("shadow-sm"):
                with ui.row().classes("w-full items-center justify-between"):
                    ui.label("Recommendations").classes("font-medium")
                    self.strategy = (
                        ui.badge("", color=None)
                        .props('data-testid="reco-strategy"')
                        .classes("px-2 py-1 text-white bg-slate-400")
                    )
                    self.strategy.set_visibility(False)
                self.reco_info = (
                    ui.label("").props('data-testid="reco-info"').classes("text-sm text-slate-600")
                )
                self.recos = _table(
                    ITEM_COLUMNS, ITEM_SLOT.replace("{prefix}", "reco"), "recommendations", "rank"
                )
        with ui.card().classes("w-full shadow-sm"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label("Similar products").classes("font-medium")
                self.product_input = (
                    ui.input(placeholder="product name or product id")
                    .props('dense outlined clearable data-testid="product-input"')
                    .classes("w-80")
                    .on("keydown.enter", self.look_up_product)
                )
                ui.button("Find similar", on_click=self.look_up_product).props(
                    'unelevated no-caps data-testid="product-lookup"'
                )
            self.product_info = (
                ui.label("").props('data-testid="product-info"').classes("text-sm text-slate-600")
            )
            similar_columns = [
                {**c, "label": "Similarity"} if c["name"] == "score" else c
                for c in ITEM_COLUMNS
                if c["name"] != "reason"
            ]
            self.similar = _table(
                similar_columns, ITEM_SLOT.replace("{prefix}", "similar"), "similar", "rank"
            )

    def _notice(self, text: str | None) -> None:
        self.notice.set_visibility(bool(text))
        self.notice.set_text(text or "")

    async def look_up_customer(self) -> None:
        customer_id = (self.customer_input.value or "").strip()
        if not customer_id:
            return
        self.profile.set_text(f"Looking up {customer_id}…")
        found = await run.io_bound(lookups.customer, self.dsn, self.api, customer_id)
        if found is None:
            return
        self._notice(found.api_notice)
        self._show_history(found)
        recos = found.recommendations
        self.strategy.set_visibility(recos is not None)
        if recos is None:
            self.reco_info.set_text("No recommendations: the API did not answer (see above).")
            self.recos.rows = []
            return
        personal = recos.strategy == "personal"
        self.strategy.set_text(recos.strategy)
        self.strategy.classes(
            replace="px-2 py-1 text-white " + ("bg-green-600" if personal else "bg-amber-500")
        )
        where = f" in {recos.region}" if recos.region else ""
        self.reco_info.set_text(
            f"model {recos.model_version} · "
            + (
                "from the customer's purchases"
                if personal
                else f"the model has not seen this customer: the most popular products{where}"
            )
            + (" · from the cache" if recos.cached else "")
        )
        self.recos.rows = item_rows(recos.recommendations, "score")

    def _show_history(self, found: lookups.CustomerLookup) -> None:
        history = found.history
        if history is None:
            self.profile.set_text(f"Cannot read the source database: {found.history_error}")
            self.orders_title.set_text("")
            self.orders.rows = []
            return
        c = history.customer
        if c is None:
            self.profile.set_text(
                f"{history.customer_id}: no such customer in the source database"
                + (f" ({history.order_count} orders name it)" if history.order_count else "")
            )
        else:
            where = ", ".join(x for x in (c.city, c.country) if x)
            since = f" · customer since {c.registered:%Y-%m-%d}" if c.registered else ""
            self.profile.set_text(
                f"{c.name or c.customer_id} ({c.customer_id}) · {c.segment or 'no segment'}"
                f"{' · ' + where if where else ''}{since}"
            )
        shown = len(history.orders)
        self.orders_title.set_text(
            f"{history.order_count:,} orders"
            + (f" · latest {shown} shown" if shown < history.order_count else "")
        )
        self.orders.rows = order_rows(history)

    async def look_up_product(self) -> None:
        query = (self.product_input.value or "").strip()
        if not query:
            return
        self.product_info.set_text(f"Looking up {query}…")
        found = await run.io_bound(lookups.product, self.dsn, self.api, query)
        if found is None:
            return
        if found.api_down:
            self._notice(found.message)
        similar = found.similar
        if similar is None:
            self.product_info.set_text(found.message or "")
            self.similar.rows = []
            return
        self._notice(None)
        self.product_info.set_text(
            f"like {similar.product_name} ({similar.product_id}) · model {similar.model_version}"
        )
        self.similar.rows = item_rows(similar.similar, "similarity")
