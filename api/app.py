"""The Starlette application: the model holder, Redis cache and settings built once per process."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.cache import RecoCache
from api.metrics import Metrics
from api.model import ModelHolder
from api.params import InvalidParameter
from api.responses import Error, ValidationError, json_response
from api.routes import ROUTES, NoModel
from jobs.adapters.registry import InvalidModel, ModelRegistry
from jobs.bootstrap import Resources
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings, get_settings

log = logging.getLogger(__name__)

TEMPLATES = {"/recommend/": "/recommend/{customer_id}", "/similar/": "/similar/{product_name}"}
PLAIN = {"/", "/health", "/reload", "/metrics", "/openapi.json"}


def route_label(path: str) -> str:
    """A bounded label per route (raw paths would make one time series per customer)."""
    if path in PLAIN:
        return path
    for prefix, template in TEMPLATES.items():
        if path.startswith(prefix):
            return template
    return "other"


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it costs a task per request): counts and times."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.observe(
                route_label(scope["path"]), scope["method"], status, time.perf_counter() - start
            )


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidParameter)
    return json_response(ValidationError.model_validate({"detail": exc.detail}), 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _no_model(request: Request, exc: Exception) -> Response:
    detail = "no model loaded: train one (`shoplake train`), then POST /reload"
    return json_response(Error(detail=detail), 503)


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(Error(detail="internal error"), 500)


def create_app(
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
    cache: RecoCache | None = None,
) -> Starlette:
    """The API; tests hand in their own settings, registry or cache."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.settings, state.metrics = settings, metrics
        state.registry = registry or Resources(settings).registry()
        state.model = ModelHolder(state.registry)
        state.cache = cache or RecoCache(settings.redis_url)
        try:
            _, version = state.model.reload()
            metrics.model_version, metrics.reloads = version, 1
            log.info("serving model %s", version)
        except (KeyError, ServiceUnavailable, InvalidModel) as exc:
            log.warning("starting without a model (%s); POST /reload once one is trained", exc)
        yield
        await state.cache.close()

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={
            InvalidParameter: _invalid,
            HTTPException: _http_error,
            NoModel: _no_model,
            Exception: _crash,
        },
    )
