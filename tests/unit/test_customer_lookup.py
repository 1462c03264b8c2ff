"""The Customer page's data: the API's replies parsed, the notices when a backend is away."""

from __future__ import annotations

import socket

import pytest

from jobs import lookups
from jobs.adapters.reco_api import RecoApi
from jobs.adapters.rest import RestError
from jobs.domain.reco_view import Recommendations, Similar, money
from jobs.errors import ServiceUnavailable
from web.customer_page import item_rows


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REPLY = {
    "cached": False,
    "customer_id": "CUST-000001",
    "model_version": "v3",
    "strategy": "personal",
    "recommendations": [
        {
            "product_id": "PROD-00002",
            "product_name": "Acme Lamp",
            "category": "Home",
            "score": 0.51234,
            "because": ["Acme Shade", "Oscorp Bulb"],
            "new_field": 1,  # the API may grow: ignored
        },
        {"product_id": "PROD-00003", "product_name": "Desk", "category": "Home", "score": 0.2},
    ],
}


def test_recommendations_parse_with_their_reasons() -> None:
    recos = Recommendations.model_validate(REPLY)
    first, second = recos.recommendations
    assert first.reason == "because you bought Acme Shade and Oscorp Bulb"
    assert second.reason == ""  # a popular list or a model without reasons
    rows = item_rows(recos.recommendations, "score")
    assert [(r["rank"], r["product_name"], r["score"]) for r in rows] == [
        (1, "Acme Lamp", "0.512"),
        (2, "Desk", "0.200"),
    ]
    similar = Similar.model_validate(
        {
            "product_id": "P",
            "product_name": "Lamp",
            "model_version": "v3",
            "similar": [{"product_id": "Q", "product_name": "Shade", "category": "Home"}],
        }
    )
    assert item_rows(similar.similar, "similarity")[0]["score"] == ""
    assert money(None) == "–"


def test_notices_say_what_is_wrong_with_the_api() -> None:
    api = RecoApi("http://127.0.0.1:9")
    down = lookups.api_notice(ServiceUnavailable("nothing answers"), api)
    assert "not running at http://127.0.0.1:9" in down and "shoplake serve" in down
    no_model = lookups.api_notice(RestError("api", 503, "no model"), api)
    assert "no model loaded" in no_model and "shoplake train" in no_model
    assert "HTTP 500: boom" in lookups.api_notice(RestError("api", 500, "boom"), api)


def test_lookups_with_nothing_running_answer_at_once_with_notices() -> None:
    port = closed_port()
    api = RecoApi(f"http://127.0.0.1:{port}", timeout=1)
    dsn = f"postgresql://nobody@127.0.0.1:{port}/shop"
    found = lookups.customer(dsn, api, "  CUST-000001 ")
    assert found.customer_id == "CUST-000001"
    assert found.history is None and "not reachable" in (found.history_error or "")
    assert found.recommendations is None and "not running" in (found.api_notice or "")
    product = lookups.product(dsn, api, "Lamp")
    assert (product.product_name, product.similar, product.api_down) == ("Lamp", None, True)
    assert "not running" in (product.message or "")


def test_an_unexpected_reply_is_one_clear_error() -> None:
    api = RecoApi("http://127.0.0.1:9")
    with pytest.raises(ServiceUnavailable, match="unexpected reply"):
        api._parse(Recommendations, {"customer_id": "x"})
