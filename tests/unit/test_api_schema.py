"""The API's typed parameters and responses, and the OpenAPI document generated from them."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from api.openapi import schema
from api.params import InvalidParameter, RecommendParams, SimilarParams
from api.responses import Item, Recommendations
from api.routes import ROUTES


def request(path_params: dict[str, str], query: bytes = b"") -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query, "headers": []}
    return Request(scope | {"path_params": path_params})


def test_parameters_come_from_the_path_and_the_query() -> None:
    asked = RecommendParams.from_request(request({"customer_id": "C1"}, b"top_n=7&other=x"))
    assert (asked.customer_id, asked.top_n) == ("C1", 7)
    assert RecommendParams.from_request(request({"customer_id": "C1"})).top_n == 10


@pytest.mark.parametrize(
    ("path", "query", "loc"),
    [
        ({"customer_id": "C1"}, b"top_n=0", ["query", "top_n"]),
        ({"customer_id": "C1"}, b"top_n=abc", ["query", "top_n"]),
        ({"customer_id": "x" * 201}, b"", ["path", "customer_id"]),
    ],
)
def test_a_bad_parameter_says_where_and_why(path, query, loc) -> None:
    with pytest.raises(InvalidParameter) as caught:
        RecommendParams.from_request(request(path, query))
    (detail,) = caught.value.detail
    assert detail["loc"] == loc and detail["msg"] and detail["type"]


def test_the_document_lists_every_route_with_its_parameters() -> None:
    doc = schema()
    assert set(doc["paths"]) == {route.path for route in ROUTES}
    params = doc["paths"]["/similar/{product_name}"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == [
        ("product_name", "path", True),
        ("top_n", "query", False),
    ]
    assert params[1]["schema"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}
    assert SimilarParams.places["product_name"].value == "path"
    refs = json.dumps(doc["paths"]).count("#/components/schemas/")
    assert refs and set(doc["components"]["schemas"]) >= {"Health", "Item", "Recommendations"}


def test_a_recommendation_keeps_cached_first_and_leaves_out_absent_numbers() -> None:
    body = Recommendations(
        cached=False,
        customer_id="C1",
        model_version="v1",
        strategy="personal",
        recommendations=[Item(product_id="P1", product_name="é", category="c", score=0.5)],
    ).model_dump_json()
    assert body.startswith('{"cached":false,')  # the cache-hit path flips these bytes
    assert json.loads(body)["recommendations"] == [
        {"product_id": "P1", "product_name": "é", "category": "c", "score": 0.5}
    ]
