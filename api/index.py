"""The Annoy index over item factors: approximate cosine neighbours for ``/similar``."""

from __future__ import annotations

import numpy as np
from annoy import AnnoyIndex

SEED = 42


def build_index(item_factors: np.ndarray, n_trees: int | None = None) -> AnnoyIndex:
    """An angular (cosine) Annoy index with one item per row, built deterministically."""
    n, dim = item_factors.shape
    index = AnnoyIndex(dim, "angular")
    index.set_seed(SEED)
    for i in range(n):
        index.add_item(i, item_factors[i])
    # more trees, better recall; past ~50 the gain is small for a few thousand items
    index.build(n_trees or int(np.clip(n // 20, 10, 50)), n_jobs=1)
    return index


def neighbours(index: AnnoyIndex, item: int, k: int) -> tuple[list[int], list[float]]:
    """The ``k`` nearest other items and their cosine similarities, best first."""
    ids, dists = index.get_nns_by_item(item, k + 1, include_distances=True)
    pairs = [(i, d) for i, d in zip(ids, dists, strict=True) if i != item][:k]
    # Annoy's angular distance is sqrt(2 - 2 cos)
    return [i for i, _ in pairs], [1.0 - d * d / 2.0 for _, d in pairs]
