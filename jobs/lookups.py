"""Use case: the dashboard's look-ups of a customer (history and recommendations) and of a
product (similar products), each answer with the notice to show when a backend is away.

Blocking (database and HTTP with short timeouts): the dashboard calls these in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.adapters import shop_lookup
from jobs.adapters.reco_api import RecoApi
from jobs.adapters.rest import RestError
from jobs.domain.reco_view import CustomerHistory, Recommendations, Similar
from jobs.errors import ShoplakeError, first_line

TOP_N = 10


@dataclass(frozen=True)
class CustomerLookup:
    customer_id: str
    history: CustomerHistory | None  # None when the source database did not answer
    history_error: str | None
    recommendations: Recommendations | None  # None when the API did not give any
    api_notice: str | None  # why there are no recommendations (API down, no model...)


@dataclass(frozen=True)
class ProductLookup:
    query: str
    product_name: str  # the name the API was asked about (a product id is translated)
    similar: Similar | None
    message: str | None  # unknown product, or why the API gave no answer
    api_down: bool = False


def api_notice(exc: Exception, api: RecoApi) -> str:
    """What the page says when the API gave no answer: not running, no model, or an error."""
    if isinstance(exc, RestError) and exc.status == 503:
        return f"The recommendation API at {api.url} has no model loaded: run `shoplake train`."
    if isinstance(exc, RestError):
        return f"The recommendation API at {api.url} answered HTTP {exc.status}: {exc.message}"
    return (
        f"The recommendation API is not running at {api.url}: start it with `shoplake serve`"
        " (recommendations and similar products need it)."
    )


def customer(dsn: str, api: RecoApi, customer_id: str, orders: int = 10) -> CustomerLookup:
    """The customer's latest orders from the source and their recommendations from the API."""
    customer_id = customer_id.strip()
    try:
        history: CustomerHistory | None = shop_lookup.customer_history(dsn, customer_id, orders)
        history_error = None
    except ShoplakeError as exc:
        history, history_error = None, first_line(exc)
    try:
        recos: Recommendations | None = api.recommend(customer_id, TOP_N)
        notice = None
    except (ShoplakeError, RestError) as exc:
        recos, notice = None, api_notice(exc, api)
    return CustomerLookup(customer_id, history, history_error, recos, notice)


def product(dsn: str, api: RecoApi, query: str) -> ProductLookup:
    """Products similar to ``query`` (a product name, or a product id of the source)."""
    query = query.strip()
    try:
        name = shop_lookup.product_name(dsn, query)
    except ShoplakeError:
        name = query  # the source is away: ask the API about the text as a name
    try:
        return ProductLookup(query, name, api.similar(name, TOP_N), None)
    except RestError as exc:
        if exc.status == 404:
            return ProductLookup(query, name, None, exc.message)
        return ProductLookup(query, name, None, api_notice(exc, api), api_down=exc.status == 503)
    except ShoplakeError as exc:
        return ProductLookup(query, name, None, api_notice(exc, api), api_down=True)
