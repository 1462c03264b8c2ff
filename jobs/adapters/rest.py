"""One small JSON-over-HTTP client (httpx) for the engines' REST APIs: Flink, Connect, Trino.

Every call is bounded in time and fails in one of two ways a caller can act on:
``RestError`` (the server answered with an error status: its code and message) or
``ServiceUnavailable`` (nothing answered: the hint says how to start it).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import httpx

from jobs.errors import ServiceUnavailable


class RestError(Exception):
    """The server answered with an error status."""

    def __init__(self, service: str, status: int, message: str) -> None:
        super().__init__(f"{service}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class Rest:
    """``base_url`` plus a name for messages (``"Flink JobManager"``) and a start hint."""

    def __init__(self, service: str, base_url: str, hint: str = "", timeout: float = 10.0) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.hint = hint
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One request; the parsed JSON reply (None when empty). ``headers`` are added to the
        request's (e.g. a bearer token); they never appear in an error's text."""
        url = f"{self.base_url}{path}"
        try:
            resp = _client().request(
                method,
                url,
                json=body,
                headers={"Accept": "application/json", **(headers or {})},
                timeout=self.timeout if timeout is None else timeout,
            )
        except httpx.HTTPError as exc:
            hint = f"; {self.hint}" if self.hint else ""
            raise ServiceUnavailable(
                f"{self.service} at {self.base_url} does not answer {method} {path} "
                f"({type(exc).__name__}: {exc}){hint}"
            ) from exc
        if resp.status_code >= 400:
            raise RestError(self.service, resp.status_code, _message(resp))
        if not resp.content.strip():
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise ServiceUnavailable(
                f"{self.service} at {self.base_url} sent no JSON for {method} {path}"
            ) from exc

    def get(
        self, path: str, timeout: float | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        return self.call("GET", path, timeout=timeout, headers=headers)


@functools.cache
def _client() -> httpx.Client:
    """One pooled client per process (thread-safe): a new one per call loads the CA bundle
    again, about 30 ms of CPU, which the lake's Trino hook paid on every gold day."""
    return httpx.Client()


def _message(resp: httpx.Response) -> str:
    """The server's own words: a JSON ``message``/``errors`` field, else the status text."""
    try:
        found = resp.json()
    except ValueError:
        return resp.reason_phrase or resp.text[:200]
    if isinstance(found, dict):
        for key in ("message", "errors", "error"):
            if found.get(key):
                value = found[key]
                return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return resp.reason_phrase
