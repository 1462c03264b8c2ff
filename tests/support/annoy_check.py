"""Annoy against exact cosine: the reference the unit test and the API benchmark measure."""

from __future__ import annotations

import numpy as np
from annoy import AnnoyIndex

from api.index import neighbours
from jobs.domain.recommender import top_k


def cosine_neighbours(item_factors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` cosine neighbours of every item (itself excluded): the Annoy reference."""
    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    unit = item_factors / np.where(norms == 0, 1, norms)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return top_k(sims, k)


def index_recall(index: AnnoyIndex, exact: np.ndarray, k: int) -> float:
    """Share of the exact top-``k`` neighbours that the index also returns (recall@k)."""
    found = 0
    for item in range(exact.shape[0]):
        found += len(set(neighbours(index, item, k)[0]) & set(exact[item, :k].tolist()))
    return found / (exact.shape[0] * k)
