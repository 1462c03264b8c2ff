"""The API's fixed response shapes as pydantic models: the routes build them, and the OpenAPI
document's schemas are generated from them (add a field here and both follow).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from jobs.domain.reco_summary import ModelSummary


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _is_none(value: object) -> bool:
    return value is None


# a number that is left out of the JSON, not sent as null, when the route does not give it
OptionalNumber = Field(default=None, exclude_if=_is_none, json_schema_extra=_no_default)


class Item(BaseModel):
    product_id: str
    product_name: str
    category: str
    score: float | SkipJsonSchema[None] = OptionalNumber
    similarity: float | SkipJsonSchema[None] = OptionalNumber
    because: list[str] | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_is_none,
        json_schema_extra=_no_default,
        description="personal recommendations: the customer's purchases closest to this one",
    )


class Health(BaseModel):
    status: Literal["ok", "degraded", "no_model"]
    model_version: str | None
    customers: int
    products: int
    factors: int
    redis: str = Field(description="ok, or why Redis is down")
    registry: str = Field(description="the model registry's backend")


class Recommendations(BaseModel):
    # "cached" stays the first key: a cache hit flips it in the stored bytes (routes.py)
    cached: bool
    customer_id: str
    model_version: str
    strategy: Literal["personal", "popular"]
    region: str | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_is_none,
        json_schema_extra=_no_default,
        description="popular: the region whose popular products these are (when known)",
    )
    recommendations: list[Item]


class Similar(BaseModel):
    product_id: str
    product_name: str
    model_version: str
    similar: list[Item]


class ModelInfo(BaseModel):
    model_version: str
    customers: int
    products: int
    factors: int
    info: dict[str, Any] = Field(description="training run: data sizes, parameters, timing")
    summary: ModelSummary | None = Field(
        description="test metrics with 95 % intervals beside the baselines (None: older model)"
    )


class Reload(BaseModel):
    model_version: str
    previous_version: str | None
    changed: bool


class Error(BaseModel):
    detail: str


class ParamError(BaseModel):
    loc: list[str] = Field(description='where, then the name: ["query", "top_n"]')
    msg: str
    type: str


class ValidationError(BaseModel):
    detail: list[ParamError]


MODELS: tuple[type[BaseModel], ...] = (
    Health,
    Recommendations,
    Similar,
    ModelInfo,
    Reload,
    Error,
    ValidationError,
)


def json_response(
    body: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``body`` as JSON (pydantic writes it: compact, UTF-8)."""
    return Response(body.model_dump_json(), status_code, headers, media_type="application/json")
