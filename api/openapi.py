"""The OpenAPI 3.1 document served at ``/openapi.json`` (hand-written: Starlette has no models)."""

from __future__ import annotations

from functools import cache
from typing import Any

TOP_N = {
    "name": "top_n",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
}


def _path(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _json(_ref("Error"), "error")
INVALID = _json(_ref("ValidationError"), "invalid parameter")
NO_MODEL = _json(_ref("Error"), "no model loaded")

ITEM = {
    "type": "object",
    "required": ["product_id", "product_name", "category"],
    "properties": {
        "product_id": {"type": "string"},
        "product_name": {"type": "string"},
        "category": {"type": "string"},
        "score": {"type": "number"},
        "similarity": {"type": "number"},
    },
}
SCHEMAS: dict[str, Any] = {
    "Item": ITEM,
    "Health": {
        "type": "object",
        "required": ["status", "model_version", "customers", "products", "redis"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "no_model"]},
            "model_version": {"type": ["string", "null"]},
            "customers": {"type": "integer"},
            "products": {"type": "integer"},
            "factors": {"type": "integer"},
            "redis": {"type": "string"},
            "registry": {"type": "string"},
        },
    },
    "Recommendations": {
        "type": "object",
        "required": ["customer_id", "model_version", "strategy", "cached", "recommendations"],
        "properties": {
            "customer_id": {"type": "string"},
            "model_version": {"type": "string"},
            "strategy": {"type": "string", "enum": ["personal", "popular"]},
            "cached": {"type": "boolean"},
            "recommendations": {"type": "array", "items": _ref("Item")},
        },
    },
    "Similar": {
        "type": "object",
        "required": ["product_id", "product_name", "model_version", "similar"],
        "properties": {
            "product_id": {"type": "string"},
            "product_name": {"type": "string"},
            "model_version": {"type": "string"},
            "similar": {"type": "array", "items": _ref("Item")},
        },
    },
    "Reload": {
        "type": "object",
        "required": ["model_version", "changed"],
        "properties": {
            "model_version": {"type": "string"},
            "previous_version": {"type": ["string", "null"]},
            "changed": {"type": "boolean"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
    },
    "ValidationError": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "array", "items": {"type": "object"}}},
    },
}


def _health(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": _json(_ref("Health"), "model loaded (status says whether Redis answers)"),
                "503": _json(_ref("Health"), "no model loaded"),
            },
        }
    }


@cache
def schema() -> dict[str, Any]:
    """The whole document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "shoplake recommendations",
            "version": "1.0.0",
            "description": "Personal and similar-product recommendations from ALS factors.",
        },
        "paths": {
            "/": _health("Status, model version and sizes, Redis connectivity"),
            "/health": _health("Same as /"),
            "/recommend/{customer_id}": {
                "get": {
                    "summary": "Top-N products for a customer (popular ones when unknown)",
                    "parameters": [_path("customer_id"), TOP_N],
                    "responses": {
                        "200": _json(_ref("Recommendations"), "ranked products"),
                        "422": INVALID,
                        "503": NO_MODEL,
                    },
                }
            },
            "/similar/{product_name}": {
                "get": {
                    "summary": "Nearest products in the Annoy index over item factors",
                    "parameters": [_path("product_name"), TOP_N],
                    "responses": {
                        "200": _json(_ref("Similar"), "similar products"),
                        "404": _json(_ref("Error"), "unknown product"),
                        "422": INVALID,
                        "503": NO_MODEL,
                    },
                }
            },
            "/reload": {
                "post": {
                    "summary": "Load the registry's production version",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json(_ref("Reload"), "loaded"),
                        "401": ERROR,
                        "403": ERROR,
                        "503": _json(
                            _ref("Error"),
                            "no token configured, no model, or the version is invalid",
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI document")},
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
