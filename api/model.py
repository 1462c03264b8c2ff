"""The served model: one immutable ``LoadedModel`` per version, swapped whole on reload."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from annoy import AnnoyIndex

from api.index import build_index, neighbours
from api.params import MAX_TOP_N
from api.responses import Item
from jobs.adapters.registry import PRODUCTION, InvalidModel, ModelRegistry
from jobs.domain.recommender import ModelBundle, recommend_one
from jobs.errors import first_line

log = logging.getLogger(__name__)

REASONS = 2  # purchases named as the reason of a personal recommendation


def _unit(factors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return (factors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _regions(bundle: ModelBundle) -> dict[str, np.ndarray]:
    """The per-region popular lists of the bundle's info, indices checked against the model."""
    raw = bundle.info.get("popular_by_region") or {}
    n = len(bundle.product_ids)
    out: dict[str, np.ndarray] = {}
    for region, items in raw.items() if isinstance(raw, dict) else ():
        idx = np.asarray([i for i in items if isinstance(i, int) and 0 <= i < n], dtype=np.int64)
        if len(idx):
            out[str(region)] = idx
    return out


@dataclass(frozen=True)
class LoadedModel:
    """A registry version ready to serve: factors, look-ups, popular list and Annoy index."""

    version: str
    bundle: ModelBundle
    customer_row: dict[str, int]
    product_index: dict[str, int]
    popular: np.ndarray  # item indices, most popular first
    index: AnnoyIndex
    labels: tuple[list[str], list[str], list[str]]  # ids, names, categories as Python str
    unit: np.ndarray  # item factors scaled to length 1: the cosine /similar and reasons use
    by_region: dict[str, np.ndarray]  # item indices, most popular first, per region

    @classmethod
    def build(cls, version: str, bundle: ModelBundle) -> LoadedModel:
        names = bundle.product_names.tolist()
        lookup: dict[str, int] = {}
        for i, name in enumerate(names):  # first product wins a duplicated name
            lookup.setdefault(name, i)
            lookup.setdefault(name.casefold(), i)
        popular = np.argsort(-bundle.popularity, kind="stable")[:MAX_TOP_N]
        return cls(
            version=version,
            bundle=bundle,
            customer_row={c: i for i, c in enumerate(bundle.customer_ids.tolist())},
            product_index=lookup,
            popular=popular,
            index=build_index(bundle.item_factors),
            labels=(bundle.product_ids.tolist(), names, bundle.categories.tolist()),
            unit=_unit(bundle.item_factors),
            by_region=_regions(bundle),
        )

    @property
    def sizes(self) -> dict[str, int]:
        users, factors = self.bundle.user_factors.shape
        return {"customers": users, "products": len(self.bundle.product_ids), "factors": factors}

    def items(self, idx: list[int], scores: list[float], key: str = "score") -> list[Item]:
        """Response entries for item indices (plain Python lists: numpy scalars are slow here)."""
        ids, names, cats = self.labels
        sim = key == "similarity"
        return [
            Item(
                product_id=ids[i],
                product_name=names[i],
                category=cats[i],
                score=None if sim else round(s, 6),
                similarity=round(s, 6) if sim else None,
            )
            for i, s in zip(idx, scores, strict=True)
        ]

    def personal(self, row: int, top_n: int) -> list[Item]:
        """Top-N by factor score for a known customer, excluding what they bought.

        Each entry's ``because`` names the customer's purchases closest to it (cosine of
        the item vectors, as ``/similar`` measures): why it was recommended.
        """
        b = self.bundle
        bought = b.bought.indices[b.bought.indptr[row] : b.bought.indptr[row + 1]]
        idx, scores = recommend_one(b.user_factors[row], b.item_factors, bought, top_n)
        items = self.items(idx.tolist(), scores.tolist())
        if len(bought) and len(idx):
            names = self.labels[1]
            sims = self.unit[idx] @ self.unit[bought].T  # recommended x bought
            best = np.argsort(-sims, axis=1, kind="stable")[:, :REASONS]
            items = [
                entry.model_copy(update={"because": [names[bought[j]] for j in picks]})
                for entry, picks in zip(items, best.tolist(), strict=True)
            ]
        return items

    def most_popular(self, top_n: int, region: str | None = None) -> list[Item]:
        """The most popular items overall, or within ``region`` when the model knows it."""
        idx = self.by_region.get(region, self.popular) if region else self.popular
        idx = idx[:top_n]
        return self.items(idx.tolist(), self.bundle.popularity[idx].tolist())

    def find_product(self, name: str) -> int | None:
        return self.product_index.get(name, self.product_index.get(name.casefold()))

    def similar(self, item: int, top_n: int) -> list[Item]:
        ids, sims = neighbours(self.index, item, top_n)
        return self.items(ids, sims, "similarity")

    def work(self) -> int:
        """Multiply-adds of one personal scoring (decides whether to leave the event loop)."""
        return int(self.bundle.item_factors.size)


class ModelHolder:
    """The current ``LoadedModel``; readers take one reference and keep using it."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.current: LoadedModel | None = None
        self._lock = threading.Lock()  # one reload at a time

    def reload(self, ref: str = PRODUCTION) -> tuple[str | None, str]:
        """Load ``ref`` (blocking: call it off the event loop); returns (previous, new) versions.

        A version that fails its checks raises ``InvalidModel`` and is not swapped in: the
        current model (if any) keeps serving.
        """
        with self._lock:
            previous = self.current.version if self.current else None
            try:
                version, bundle = self.registry.load(ref)
            except InvalidModel as exc:
                log.error("%s; still serving %s", exc, previous or "no model")
                raise
            if version != previous:
                try:
                    self.current = LoadedModel.build(version, bundle)
                except (ValueError, IndexError) as exc:  # the index: a check missed something
                    log.error("model %s refused: %s; still serving %s", version, exc, previous)
                    raise InvalidModel(version, first_line(exc)) from None
            return previous, version
