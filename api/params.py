"""Request parameter parsing: bad input becomes a 422 with FastAPI-style details, never a 500."""

from __future__ import annotations

from starlette.requests import Request

MAX_ID_LENGTH = 200


class InvalidParameter(Exception):
    """A parameter the client got wrong; rendered as HTTP 422."""

    def __init__(self, where: str, name: str, msg: str) -> None:
        super().__init__(msg)
        self.detail = [{"loc": [where, name], "msg": msg, "type": "value_error"}]


def top_n(request: Request, default: int = 10, low: int = 1, high: int = 50) -> int:
    """The ``top_n`` query parameter: an integer in [low, high]."""
    raw = request.query_params.get("top_n")
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidParameter("query", "top_n", f"must be an integer, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise InvalidParameter("query", "top_n", f"must be between {low} and {high}, got {value}")
    return value


def path_text(request: Request, name: str) -> str:
    """A path parameter, bounded in length (it ends up in cache keys and messages)."""
    value = str(request.path_params[name])
    if not value or len(value) > MAX_ID_LENGTH:
        raise InvalidParameter("path", name, f"must be 1 to {MAX_ID_LENGTH} characters")
    return value
