"""The HTTP endpoints; everything they need comes from ``request.app.state``."""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import responses as r
from api.cache import reco_key
from api.metrics import CONTENT_TYPE as METRICS_TYPE
from api.model import LoadedModel
from api.openapi import schema
from api.params import RecommendParams, SimilarParams
from jobs.adapters.registry import InvalidModel
from jobs.errors import ServiceUnavailable

# below this many multiply-adds a scoring takes microseconds: a thread hop would cost more
OFFLOAD_WORK = 1_000_000


class NoModel(Exception):
    """No version is loaded yet (HTTP 503)."""


def _error(detail: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
    return r.json_response(r.Error(detail=detail), status_code, headers)


def _model(request: Request) -> LoadedModel:
    model = request.app.state.model.current
    if model is None:
        raise NoModel()
    return model


async def health(request: Request) -> Response:
    state = request.app.state
    model = state.model.current
    redis = await state.cache.ping()
    body = r.Health(
        status="ok" if model and redis == "ok" else "degraded" if model else "no_model",
        model_version=model.version if model else None,
        **(model.sizes if model else {"customers": 0, "products": 0, "factors": 0}),
        redis=redis,
        registry=state.registry.backend,
    )
    return r.json_response(body, status_code=200 if model else 503)


async def model_summary(request: Request) -> Response:
    """The served version: how it was chosen and its test metrics beside the baselines."""
    model = _model(request)
    return r.json_response(
        r.ModelInfo(
            model_version=model.version,
            **model.sizes,
            info=model.bundle.info,
            summary=model.bundle.summary,
        )
    )


async def recommend(request: Request) -> Response:
    asked = RecommendParams.from_request(request)
    customer_id, top_n = asked.customer_id, asked.top_n
    model, state = _model(request), request.app.state
    row = model.customer_row.get(customer_id)
    if row is None:
        # cold start: popular items, within the customer's region when it is given and known
        known = asked.region if asked.region in model.by_region else None
        state.metrics.strategy["popular"] += 1
        return r.json_response(
            r.Recommendations(
                cached=False,
                customer_id=customer_id,
                model_version=model.version,
                strategy="popular",
                region=known,
                recommendations=model.most_popular(top_n, known),
            )
        )
    state.metrics.strategy["personal"] += 1
    key = reco_key(model.version, customer_id, top_n)
    raw, result = await state.cache.get(key)
    state.metrics.cache[result] += 1
    if raw is not None:
        # "cached" is always the first key: flip it without a JSON round trip
        return Response(
            raw.replace(b'{"cached":false', b'{"cached":true', 1), media_type="application/json"
        )
    if model.work() > OFFLOAD_WORK:
        items = await run_in_threadpool(model.personal, row, top_n)
    else:
        items = model.personal(row, top_n)
    raw = (
        r.Recommendations(
            cached=False,
            customer_id=customer_id,
            model_version=model.version,
            strategy="personal",
            recommendations=items,
        )
        .model_dump_json()
        .encode()
    )
    await state.cache.set(key, raw)
    return Response(raw, media_type="application/json")


async def similar(request: Request) -> Response:
    asked = SimilarParams.from_request(request)
    name = asked.product_name
    model = _model(request)
    item = model.find_product(name)
    if item is None:
        return _error(
            f"unknown product {name!r}: no product of that name in "
            f"model {model.version} (names match exactly, any case)",
            404,
        )
    return r.json_response(
        r.Similar(
            product_id=model.bundle.product_ids[item],
            product_name=model.bundle.product_names[item],
            model_version=model.version,
            similar=model.similar(item, asked.top_n),
        )
    )


async def reload(request: Request) -> Response:
    state = request.app.state
    token = state.settings.api_token
    if token is None:
        return _error("reload is disabled: set SHOPLAKE_API_TOKEN", 503)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _error("missing bearer token", 401, headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        return _error("invalid token", 403)
    try:
        previous, version = await run_in_threadpool(state.model.reload)
    except KeyError:
        return _error("no production model in the registry: run `shoplake train`", 503)
    except InvalidModel as exc:
        current = state.model.current
        serving = f"still serving {current.version}" if current else "no model is served"
        return _error(f"{exc}; refused, {serving}", 503)
    except ServiceUnavailable as exc:
        return _error(str(exc), 503)
    state.metrics.model_version = version
    state.metrics.reloads += previous != version
    return r.json_response(
        r.Reload(model_version=version, previous_version=previous, changed=previous != version)
    )


async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=METRICS_TYPE)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(schema())


ROUTES = [
    Route("/", health, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/recommend/{customer_id}", recommend, methods=["GET"]),
    Route("/similar/{product_name}", similar, methods=["GET"]),
    Route("/model", model_summary, methods=["GET"]),
    Route("/reload", reload, methods=["POST"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
