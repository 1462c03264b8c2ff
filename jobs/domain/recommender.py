"""Recommender maths: interaction matrix, implicit-feedback ALS, scoring, ranking metrics.

Pure numpy/scipy (ALS through the ``implicit`` library); no I/O. Orders arrive as an
Arrow table (or anything with ``to_arrow()``, e.g. a polars DataFrame) with at least
``order_date`` (UTC timestamp), ``customer_id``, ``product_id``, ``product_name``, ``category``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

K = 10


@dataclass(frozen=True)
class ALSParams:
    """Hyper-parameters of the implicit-feedback ALS (Hu, Koren, Volinsky 2008)."""

    # chosen on generated shops (tests/unit/test_recommender.py); few factors suit few orders
    factors: int = 16
    regularization: float = 5.0
    alpha: float = 2.0
    iterations: int = 15
    seed: int = 42


@dataclass(frozen=True)
class Interactions:
    """A customers x products matrix of order counts, with its id vocabularies."""

    matrix: sp.csr_matrix
    customer_ids: np.ndarray
    product_ids: np.ndarray
    product_names: np.ndarray
    categories: np.ndarray


@dataclass(frozen=True)
class ModelBundle:
    """Everything the API serves: factors, vocabularies, popularity and bought items."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    customer_ids: np.ndarray
    product_ids: np.ndarray
    product_names: np.ndarray
    categories: np.ndarray
    popularity: np.ndarray
    bought: sp.csr_matrix
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class InvalidBundle(ValueError):
    """A bundle whose parts do not fit together (or carry NaN): never to be served."""


def check_bundle(bundle: ModelBundle) -> None:
    """Raise ``InvalidBundle`` unless the arrays agree in shape and the numbers are finite.

    A bundle is read from files anyone with access to the registry can change; serving a
    broken one would fail on some requests only (an index out of range, NaN scores).
    """
    user, item, pop, bought = (
        bundle.user_factors,
        bundle.item_factors,
        bundle.popularity,
        bundle.bought,
    )
    n_c, n_p = len(bundle.customer_ids), len(bundle.product_ids)
    if user.ndim != 2 or item.ndim != 2:
        raise InvalidBundle(f"factors must be 2-D (user {user.ndim}-D, item {item.ndim}-D)")
    if not (np.issubdtype(user.dtype, np.floating) and np.issubdtype(item.dtype, np.floating)):
        raise InvalidBundle(f"factors must be floats (user {user.dtype}, item {item.dtype})")
    if user.shape[1] != item.shape[1] or user.shape[1] < 1:
        raise InvalidBundle(
            f"user and item factors disagree ({user.shape[1]} vs {item.shape[1]} factors)"
        )
    if n_p < 1:
        raise InvalidBundle("no products")
    if user.shape[0] != n_c:
        raise InvalidBundle(f"{user.shape[0]} user factor rows for {n_c} customers")
    sizes = {
        "item factor rows": item.shape[0],
        "product names": len(bundle.product_names),
        "categories": len(bundle.categories),
        "popularity entries": pop.shape[0] if pop.ndim == 1 else -1,
    }
    for what, size in sizes.items():
        if size != n_p:
            raise InvalidBundle(f"{size} {what} for {n_p} products")
    if bought.shape != (n_c, n_p):
        raise InvalidBundle(f"bought matrix {bought.shape} is not customers x products")
    try:
        bought.check_format(full_check=True)  # indices within the products, sorted indptr
    except ValueError as exc:
        raise InvalidBundle(f"bought matrix: {exc}") from None
    for what, values in (("user factors", user), ("item factors", item), ("popularity", pop)):
        if not np.isfinite(values).all():
            raise InvalidBundle(f"{what} are not all finite (NaN or inf)")


def as_table(orders: Any) -> pa.Table:
    """An Arrow table from an Arrow table or anything with ``to_arrow()`` (polars)."""
    return orders if isinstance(orders, pa.Table) else orders.to_arrow()


def _strings(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
    return np.asarray(col.cast(pa.string()).fill_null("").to_pylist(), dtype=object)


def build_interactions(orders: Any) -> Interactions:
    """Count orders per (customer, product); rows without a customer or product are skipped."""
    table = as_table(orders)
    cust, prod = _strings(table, "customer_id"), _strings(table, "product_id")
    keep = (cust != "") & (prod != "")
    cust, prod = cust[keep], prod[keep]
    names, cats = _strings(table, "product_name")[keep], _strings(table, "category")[keep]
    customer_ids, rows = np.unique(cust, return_inverse=True)
    product_ids, first, cols = np.unique(prod, return_index=True, return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=(len(customer_ids), len(product_ids)),
    )
    matrix.sum_duplicates()
    return Interactions(matrix, customer_ids, product_ids, names[first], cats[first])


def align(inter: Interactions, customer_ids: np.ndarray, product_ids: np.ndarray) -> sp.csr_matrix:
    """Re-index ``inter.matrix`` onto another vocabulary; unknown ids are dropped."""
    rmap = _positions(customer_ids, inter.customer_ids)
    cmap = _positions(product_ids, inter.product_ids)
    coo = inter.matrix.tocoo()
    ok = (rmap[coo.row] >= 0) & (cmap[coo.col] >= 0)
    return sp.csr_matrix(
        (coo.data[ok], (rmap[coo.row[ok]], cmap[coo.col[ok]])),
        shape=(len(customer_ids), len(product_ids)),
    )


def _positions(vocab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each of ``ids`` in the sorted ``vocab``, -1 where absent."""
    if len(vocab) == 0:
        return np.full(len(ids), -1)
    pos = np.clip(np.searchsorted(vocab, ids), 0, len(vocab) - 1)
    return np.where(vocab[pos] == ids, pos, -1)


def time_split(orders: Any, holdout_days: int) -> tuple[pa.Table, pa.Table, dt.date]:
    """Split orders into (train, test, first test day): the test is the last ``holdout_days``."""
    table = as_table(orders)
    dates = pc.cast(table.column("order_date"), pa.timestamp("us", tz="UTC"))
    days = pc.cast(dates, pa.date32())
    last = pc.max(days).as_py()
    if last is None:
        raise ValueError("no orders to split")
    cutoff = last - dt.timedelta(days=holdout_days - 1)
    is_test = pc.greater_equal(days, pa.scalar(cutoff, pa.date32()))
    return table.filter(pc.invert(is_test)), table.filter(is_test), cutoff


def fit_als(matrix: sp.csr_matrix, params: ALSParams) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS on a customers x products count matrix; returns (user, item) factors."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # log-scaled counts: a tenth repeat order says less than the first one
    conf = matrix.copy().astype(np.float32)
    conf.data = np.log1p(conf.data)
    # implicit parallelises per user itself; a BLAS pool on top only oversubscribes
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=params.alpha,
            iterations=params.iterations,
            random_state=params.seed,
        )
        model.fit(conf, show_progress=False)
    return np.ascontiguousarray(model.user_factors), np.ascontiguousarray(model.item_factors)


def popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Distinct customers per product (the popularity baseline's score)."""
    return np.asarray((matrix > 0).sum(axis=0), dtype=np.float32).ravel()


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores of each row, best first (ties: lowest index)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _exclude(scores: np.ndarray, exclude: sp.csr_matrix) -> None:
    rows, cols = exclude.nonzero()
    scores[rows, cols] = -np.inf


def recommend_batch(
    user_vecs: np.ndarray, item_factors: np.ndarray, exclude: sp.csr_matrix, k: int = K
) -> np.ndarray:
    """Top-``k`` items per user by dot product, never an item in that user's ``exclude`` row."""
    scores = user_vecs @ item_factors.T
    _exclude(scores, exclude)
    return top_k(scores, k)


def popular_batch(pop: np.ndarray, exclude: sp.csr_matrix, k: int = K) -> np.ndarray:
    """The popularity baseline: most popular items not yet bought, per user."""
    scores = np.broadcast_to(pop, (exclude.shape[0], len(pop))).copy()
    _exclude(scores, exclude)
    return top_k(scores, k)


def recommend_one(
    user_vec: np.ndarray, item_factors: np.ndarray, bought: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores) for one user, best first, skipping the ``bought`` item indices."""
    scores = item_factors @ user_vec
    scores[bought] = -np.inf
    k = min(k, len(scores) - len(np.unique(bought)))
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=scores.dtype)
    # one row: plain 1-D calls, the batched take_along_axis path costs more than the maths
    part = np.argpartition(-scores, k - 1)[:k]
    idx = part[np.lexsort((part, -scores[part]))]
    return idx, scores[idx]


def ranking_metrics(recs: np.ndarray, truth: sp.csr_matrix, n_items: int, k: int = K) -> dict:
    """precision@k, recall@k, NDCG@k (binary relevance) and catalogue coverage.

    ``recs[i]`` ranks items for the user of ``truth`` row ``i``; rows with an empty truth are
    ignored. Recall divides by the user's number of relevant items.
    """
    n_true = truth.getnnz(axis=1)
    keep = n_true > 0
    recs, truth, n_true = recs[keep][:, :k], truth[keep], n_true[keep]
    n = recs.shape[0]
    if n == 0:
        return {
            f"precision@{k}": 0.0,
            f"recall@{k}": 0.0,
            f"ndcg@{k}": 0.0,
            "coverage": 0.0,
            "users": 0,
        }
    rows = np.repeat(np.arange(n), recs.shape[1])
    hits = np.asarray(truth[rows, recs.ravel()]).reshape(recs.shape) > 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: recs.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(n_true, k) - 1]
    n_hits = hits.sum(axis=1)
    return {
        f"precision@{k}": float((n_hits / k).mean()),
        f"recall@{k}": float((n_hits / n_true).mean()),
        f"ndcg@{k}": float((dcg / idcg).mean()),
        "coverage": float(len(np.unique(recs)) / n_items) if n_items else 0.0,
        "users": int(n),
    }


def cosine_neighbours(item_factors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` cosine neighbours of every item (itself excluded): the Annoy reference."""
    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    unit = item_factors / np.where(norms == 0, 1, norms)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return top_k(sims, k)


def holdout_truth(train: Interactions, test: Interactions) -> sp.csr_matrix:
    """Test purchases on the train vocabulary, minus what the customer had already bought."""
    truth = align(test, train.customer_ids, train.product_ids)
    truth = truth - truth.multiply(train.matrix > 0)
    truth.eliminate_zeros()
    return truth.tocsr()


def evaluate_holdout(
    train: Interactions, test: Interactions, params: ALSParams, k: int = K
) -> dict:
    """Fit on ``train``, rank for every customer with new test purchases; model vs popularity."""
    users_f, items_f = fit_als(train.matrix, params)
    truth = holdout_truth(train, test)
    users = np.flatnonzero(truth.getnnz(axis=1))
    seen, gold = train.matrix[users], truth[users]
    n_items = train.matrix.shape[1]
    model = ranking_metrics(recommend_batch(users_f[users], items_f, seen, k), gold, n_items, k)
    base = ranking_metrics(popular_batch(popularity(train.matrix), seen, k), gold, n_items, k)
    key = f"ndcg@{k}"
    lift = model[key] / base[key] if base[key] > 0 else float("inf") if model[key] > 0 else 0.0
    metrics = {name: value for name, value in model.items() if name != "users"}
    metrics |= {f"popularity_{name}": v for name, v in base.items() if name != "users"}
    metrics |= {f"lift_{key}": lift, "eval_customers": model["users"]}
    return metrics
