"""The recommendation API's replies as the dashboard reads them, and a customer's history.

Typed mirrors of the API's JSON (``api.responses``; ``jobs`` cannot import ``api``): only the
fields the dashboard shows, extra fields ignored, so the API may grow without breaking them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from jobs.domain.reco_summary import ModelSummary


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RecoItem(_Reply):
    product_id: str
    product_name: str
    category: str
    score: float | None = None
    similarity: float | None = None
    because: list[str] | None = None  # personal: the customer's purchases closest to this one

    @property
    def reason(self) -> str:
        """'because you bought X and Y', or '' when the model gives no reason."""
        if not self.because:
            return ""
        return "because you bought " + " and ".join(self.because)


class Recommendations(_Reply):
    customer_id: str
    model_version: str
    strategy: str  # personal | popular
    cached: bool = False
    region: str | None = None
    recommendations: list[RecoItem]


class Similar(_Reply):
    product_id: str
    product_name: str
    model_version: str
    similar: list[RecoItem]


class ModelInfo(_Reply):
    """``GET /model``: the served version, its sizes and its summary (None: older model)."""

    model_version: str
    customers: int = 0
    products: int = 0
    factors: int = 0
    summary: ModelSummary | None = None


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str | None
    segment: str | None
    city: str | None
    country: str | None
    registered: dt.date | None


@dataclass(frozen=True)
class OrderLine:
    order_id: str
    ordered_at: dt.datetime | None
    product_name: str | None
    category: str | None
    quantity: int | None
    total: Decimal | None
    status: str | None


@dataclass(frozen=True)
class CustomerHistory:
    """A customer (None when unknown to the source) and their latest orders, newest first."""

    customer_id: str
    customer: Customer | None
    orders: list[OrderLine]
    order_count: int  # every order of the customer, not only the ones listed

    @property
    def known(self) -> bool:
        return self.customer is not None or self.order_count > 0


def money(value: Decimal | float | None) -> str:
    return "–" if value is None else f"${value:,.2f}"
