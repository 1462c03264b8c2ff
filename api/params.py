"""Request parameters as typed models: pydantic checks them, the OpenAPI document shows them.

One model per endpoint; each field says where it comes from (``In.PATH`` or ``In.QUERY`` in
its ``Annotated`` metadata). Bad input becomes a 422 with FastAPI-style details
(``loc``, ``msg``, ``type``), never a 500.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

MAX_ID_LENGTH = 200
MAX_TOP_N = 50


class In(StrEnum):
    """Where a parameter is read from (OpenAPI's ``in``)."""

    PATH = "path"
    QUERY = "query"


# ids end up in cache keys and messages: bounded in length
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), In.PATH]
Region = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="the customer's region: a customer without history gets its popular products",
    ),
    In.QUERY,
]
TopN = Annotated[int, Field(ge=1, le=MAX_TOP_N, description="how many products"), In.QUERY]


class InvalidParameter(Exception):
    """A parameter the client got wrong; rendered as HTTP 422."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{d['loc'][-1]}: {d['msg']}" for d in detail))
        self.detail = detail


class Params(BaseModel):
    """The base of an endpoint's parameter model; unknown query parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    # each field's place, and the names per place (read on every request: kept at hand)
    places: ClassVar[dict[str, In]] = {}
    path_names: ClassVar[tuple[str, ...]] = ()
    query_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # a field without an ``In`` is a query parameter
        cls.places = {
            name: next((m for m in field.metadata if isinstance(m, In)), In.QUERY)
            for name, field in cls.model_fields.items()
        }
        cls.path_names = tuple(n for n, p in cls.places.items() if p is In.PATH)
        cls.query_names = tuple(n for n, p in cls.places.items() if p is In.QUERY)

    @classmethod
    def from_request(cls, request: Request) -> Self:
        """The request's parameters, checked; ``InvalidParameter`` when one is wrong."""
        path = request.path_params
        given = {name: path[name] for name in cls.path_names if name in path}
        query = request.query_params
        for name in cls.query_names:
            value = query.get(name)
            if value is not None:
                given[name] = value
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise InvalidParameter(
                [
                    {
                        "loc": [cls.places[str(e["loc"][0])].value, *map(str, e["loc"])],
                        "msg": e["msg"],
                        "type": e["type"],
                    }
                    for e in exc.errors(include_url=False, include_input=False)
                ]
            ) from None

    @classmethod
    def openapi(cls) -> list[dict[str, Any]]:
        """The OpenAPI ``parameters`` of this model."""
        schema = cls.model_json_schema()
        required = set(schema.get("required", ()))
        out = []
        for name, place in cls.places.items():
            prop = dict(schema["properties"][name])
            prop.pop("title", None)
            description = prop.pop("description", None)
            param = {"name": name, "in": place.value, "required": name in required}
            out.append(param | ({"description": description} if description else {}))
            out[-1]["schema"] = prop
        return out


class RecommendParams(Params):
    customer_id: Id
    top_n: TopN = 10
    region: Region | None = None


class SimilarParams(Params):
    product_name: Id
    top_n: TopN = 10
