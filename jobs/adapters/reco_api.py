"""The recommendation API over HTTP, for the dashboard (``shoplake serve``; never imported).

Short timeouts: a page waits for it in a worker thread and shows a notice when it is away.
``ServiceUnavailable`` when nothing answers, ``RestError`` for an error status (404: unknown
product, 503: no model loaded).
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from jobs.adapters.rest import Rest
from jobs.domain.reco_view import ModelInfo, Recommendations, Similar
from jobs.errors import ServiceUnavailable

M = TypeVar("M", bound=BaseModel)

TIMEOUT_S = 3.0
HINT = "start it with `shoplake serve` (or `shoplake up`)"


class RecoApi:
    def __init__(self, base_url: str, timeout: float = TIMEOUT_S) -> None:
        self.rest = Rest("the recommendation API", base_url, hint=HINT, timeout=timeout)

    @property
    def url(self) -> str:
        return self.rest.base_url

    def recommend(self, customer_id: str, top_n: int = 10) -> Recommendations:
        body = self.rest.get(f"/recommend/{quote(customer_id, safe='')}?top_n={top_n}")
        return self._parse(Recommendations, body)

    def similar(self, product_name: str, top_n: int = 10) -> Similar:
        body = self.rest.get(f"/similar/{quote(product_name, safe='')}?top_n={top_n}")
        return self._parse(Similar, body)

    def model(self) -> ModelInfo:
        return self._parse(ModelInfo, self.rest.get("/model"))

    def _parse(self, model: type[M], body: Any) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ServiceUnavailable(
                f"{self.rest.service} at {self.url} sent an unexpected reply "
                f"({exc.error_count()} field error(s)): is it shoplake's API?"
            ) from None
