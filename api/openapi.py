"""The OpenAPI 3.1 document served at ``/openapi.json``, generated from the typed models.

Parameters come from the endpoints' models in ``api.params``, schemas from the response
models in ``api.responses``; this module only lists the operations: path, summary, and
which model answers with which status. A new endpoint is one more ``Operation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api import responses as r
from api.params import Params, RecommendParams, SimilarParams

REF = "#/components/schemas/{model}"
# a status's body: a response model, or a raw schema for what is not JSON of a fixed shape
Body = type[BaseModel] | dict[str, Any]


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    summary: str
    responses: Mapping[int, tuple[Body, str]]
    params: type[Params] | None = None
    secured: bool = False
    media_type: str = "application/json"


NO_MODEL = (r.Error, "no model loaded")
INVALID = (r.ValidationError, "invalid parameter")
HEALTH = {
    200: (r.Health, "model loaded (status says whether Redis answers)"),
    503: (r.Health, "no model loaded"),
}

OPERATIONS = (
    Operation("/", "get", "Status, model version and sizes, Redis connectivity", HEALTH),
    Operation("/health", "get", "Same as /", HEALTH),
    Operation(
        "/recommend/{customer_id}",
        "get",
        "Top-N products for a customer (popular ones when unknown)",
        {200: (r.Recommendations, "ranked products"), 422: INVALID, 503: NO_MODEL},
        RecommendParams,
    ),
    Operation(
        "/similar/{product_name}",
        "get",
        "Nearest products in the Annoy index over item factors",
        {
            200: (r.Similar, "similar products"),
            404: (r.Error, "unknown product"),
            422: INVALID,
            503: NO_MODEL,
        },
        SimilarParams,
    ),
    Operation(
        "/model",
        "get",
        "The served version: test metrics with intervals beside the baselines, the search",
        {200: (r.ModelInfo, "the model summary"), 503: NO_MODEL},
    ),
    Operation(
        "/reload",
        "post",
        "Load the registry's production version",
        {
            200: (r.Reload, "loaded"),
            401: (r.Error, "error"),
            403: (r.Error, "error"),
            503: (r.Error, "no token configured, no model, or the version is invalid"),
        },
        secured=True,
    ),
    Operation(
        "/metrics",
        "get",
        "Prometheus metrics",
        {200: ({"type": "string"}, "Prometheus text format")},
        media_type="text/plain",
    ),
    Operation(
        "/openapi.json",
        "get",
        "This document",
        {200: ({"type": "object"}, "OpenAPI document")},
    ),
)


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary}
    if op.params is not None:
        out["parameters"] = op.params.openapi()
    if op.secured:
        out["security"] = [{"bearer": []}]
    out["responses"] = {
        str(status): {
            "description": description,
            "content": {
                op.media_type: {
                    "schema": body
                    if isinstance(body, dict)
                    else {"$ref": REF.format(model=body.__name__)}
                }
            },
        }
        for status, (body, description) in op.responses.items()
    }
    return out


@cache
def schema() -> dict[str, Any]:
    """The whole document (built once)."""
    _, defs = models_json_schema([(model, "serialization") for model in r.MODELS], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "shoplake recommendations",
            "version": "1.0.0",
            "description": "Personal and similar-product recommendations from ALS factors.",
        },
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
