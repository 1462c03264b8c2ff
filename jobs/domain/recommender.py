"""Recommender maths: interaction matrix, implicit-feedback ALS, scoring, ranking metrics.

Pure numpy/scipy (ALS through the ``implicit`` library); no I/O. Orders arrive as an
Arrow table (or anything with ``to_arrow()``, e.g. a polars DataFrame) with at least
``order_date`` (UTC timestamp), ``customer_id``, ``product_id``, ``product_name``, ``category``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from jobs.domain.reco_summary import ModelSummary

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
    summary: ModelSummary | None = None  # how it was chosen and evaluated (None: older)


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


def confidence(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Hu-Koren-Volinsky confidence ``c = 1 + alpha * r`` of every bought (customer, item).

    ``r = log2(1 + count)``: one purchase is ``r = 1``, a tenth repeat adds less than the
    first. An unbought pair keeps the implicit confidence 1 (preference 0), so any
    ``alpha > 0`` weights a purchase above a non-purchase, as the paper intends.
    """
    conf = matrix.copy().astype(np.float32)
    conf.data = 1.0 + alpha * np.log2(1.0 + conf.data)
    return conf


def fit_als(matrix: sp.csr_matrix, params: ALSParams) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS on a customers x products count matrix; returns (user, item) factors.

    The ``implicit`` library reads the matrix values as the confidence itself (and would
    multiply them by its own ``alpha``, with no ``+ 1``): it gets ``confidence()`` and
    ``alpha=1``.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    conf = confidence(matrix, params.alpha)
    # implicit parallelises per user itself; a BLAS pool on top only oversubscribes
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=1.0,
            iterations=params.iterations,
            random_state=params.seed,
        )
        model.fit(conf, show_progress=False)
    return np.ascontiguousarray(model.user_factors), np.ascontiguousarray(model.item_factors)


@dataclass(frozen=True)
class KNNParams:
    """Item-item cosine kNN: ``neighbours`` kept per item, ``shrink`` damps rare pairs."""

    neighbours: int = 100
    shrink: float = 10.0


@dataclass(frozen=True)
class EASEParams:
    """EASE (Steck 2019): a closed-form item-item model, one L2 penalty."""

    l2: float = 300.0
    half_life: float | None = None  # score from a profile favouring recent purchases


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1 where a customer bought an item (any number of times), else 0."""
    out = matrix.tocsr().copy().astype(np.float32)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


def fit_itemknn(matrix: sp.csr_matrix, params: KNNParams) -> sp.csr_matrix:
    """Items x items similarities of the classic item-item kNN (score = bought @ sim).

    ``sim(i, j) = co(i, j) / (sqrt(n_i * n_j) + shrink)`` over binary purchases (cosine with
    shrinkage), without the item itself, keeping the ``neighbours`` most similar ``i`` of
    every item ``j``. Sparse throughout: large catalogues need no items x items array.
    """
    x = binary(matrix)
    co = (x.T @ x).tocoo()
    off = co.row != co.col
    rows, cols, vals = co.row[off], co.col[off], co.data[off]
    norms = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float32).ravel())
    vals = (vals / (norms[rows] * norms[cols] + params.shrink)).astype(np.float32)
    sim = sp.csc_matrix((vals, (rows, cols)), shape=co.shape)
    sim.sort_indices()
    keep = np.ones(sim.nnz, dtype=bool)
    n = params.neighbours
    for j in np.flatnonzero(np.diff(sim.indptr) > n):  # columns with too many neighbours
        start, end = sim.indptr[j], sim.indptr[j + 1]
        mine = np.zeros(end - start, dtype=bool)
        mine[np.argpartition(-sim.data[start:end], n - 1)[:n]] = True
        keep[start:end] = mine
    sim.data = np.where(keep, sim.data, 0).astype(np.float32)
    sim.eliminate_zeros()
    return sim.tocsr()


def fit_ease(matrix: sp.csr_matrix, params: EASEParams) -> np.ndarray:
    """EASE's items x items weights ``B`` (zero diagonal); scores are ``bought @ B``.

    ``B = I - P / diag(P)`` with ``P = (X'X + l2 I)^-1``: one dense inverse, so it suits
    catalogues up to tens of thousands of items. Items bought by a single customer carry
    no co-purchase signal: they are left out of the inverse (their rows and columns stay
    0), which on long-tailed catalogues makes it several times cheaper.
    """
    from scipy.linalg import lapack

    x = binary(matrix)
    n_items = x.shape[1]
    active = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() >= 2)
    out = np.zeros((n_items, n_items), dtype=np.float32)
    if len(active) == 0:
        return out
    sub = x[:, active]
    gram = (sub.T @ sub).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += params.l2
    # Cholesky inverse of the symmetric positive definite Gram (twice as fast as inv)
    chol, info = lapack.spotrf(gram, lower=1, overwrite_a=1)
    if info == 0:
        p, info = lapack.spotri(chol, lower=1, overwrite_c=1)
    if info != 0:
        raise ValueError(f"EASE: the Gram matrix is not positive definite (LAPACK {info})")
    p = np.tril(p) + np.tril(p, -1).T
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    out[np.ix_(active, active)] = b
    return out


def low_rank(
    weights: np.ndarray | sp.spmatrix, rank: int, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` with ``left @ right.T`` close to ``weights`` (randomised SVD).

    An item-item model served as factors: a customer's vector is ``bought @ left`` and the
    items' are ``right``, so scoring stays one small dot product per item.
    """
    n = weights.shape[0]
    rank = min(rank, n)
    rng = np.random.default_rng(seed)
    probe = rng.standard_normal((n, min(n, rank + 16))).astype(np.float32)
    basis = np.asarray(weights @ probe)
    for _ in range(2):  # power iterations sharpen the leading subspace
        basis, _r = np.linalg.qr(basis)
        basis = np.asarray(weights @ np.asarray(weights.T @ basis))
    basis, _r = np.linalg.qr(basis)
    u, sing, vt = np.linalg.svd(np.asarray((weights.T @ basis).T), full_matrices=False)
    left = (basis @ u[:, :rank]) * sing[:rank]
    return np.ascontiguousarray(left, np.float32), np.ascontiguousarray(vt[:rank].T, np.float32)


def popularity(matrix: sp.csr_matrix) -> np.ndarray:
    """Distinct customers per product (the popularity baseline's score)."""
    return np.asarray((matrix > 0).sum(axis=0), dtype=np.float32).ravel()


def popular_by_group(
    orders: Any, inter: Interactions, column: str = "region", n: int = 50
) -> dict[str, list[int]]:
    """The ``n`` most popular items (distinct customers) within each value of ``column``.

    Item indices are on ``inter``'s vocabulary; the cold start of a customer whose region
    (or segment) is known. Empty when the orders have no such column.
    """
    table = as_table(orders)
    if column not in table.column_names:
        return {}
    group = _strings(table, column)
    cust = _positions(inter.customer_ids, _strings(table, "customer_id"))
    prod = _positions(inter.product_ids, _strings(table, "product_id"))
    ok = (group != "") & (cust >= 0) & (prod >= 0)
    out: dict[str, list[int]] = {}
    for value in np.unique(group[ok]):
        mine = ok & (group == value)
        pairs = np.unique(cust[mine].astype(np.int64) * len(inter.product_ids) + prod[mine])
        counts = np.bincount(pairs % len(inter.product_ids), minlength=len(inter.product_ids))
        order = np.lexsort((np.arange(len(counts)), -counts))[:n]
        out[str(value)] = [int(i) for i in order if counts[i] > 0]
    return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores of each row, best first (ties: lowest index)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


NONE = -1  # a slot of a ranked row with no item (the customer bought almost everything)


def ranked(scores: np.ndarray, exclude: sp.csr_matrix, k: int = K) -> np.ndarray:
    """Top-``k`` columns per row, never one of that row's ``exclude`` items.

    A row with fewer than ``k`` items left is padded with ``NONE`` (-1): an excluded item is
    never returned to fill the list.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    rows, cols = exclude.nonzero()
    scores[rows, cols] = -np.inf
    recs = top_k(scores, k)
    gone = np.isneginf(np.take_along_axis(scores, recs, axis=1))
    recs[gone] = NONE
    return recs


def recommend_batch(
    user_vecs: np.ndarray, item_factors: np.ndarray, exclude: sp.csr_matrix, k: int = K
) -> np.ndarray:
    """Top-``k`` items per user by dot product, never an item in that user's ``exclude`` row."""
    return ranked(user_vecs @ item_factors.T, exclude, k)


def popular_batch(pop: np.ndarray, exclude: sp.csr_matrix, k: int = K) -> np.ndarray:
    """The popularity baseline: most popular items not yet bought, per user."""
    return ranked(np.broadcast_to(pop, (exclude.shape[0], len(pop))), exclude, k)


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


def per_user_metrics(recs: np.ndarray, truth: sp.csr_matrix, k: int = K) -> dict[str, np.ndarray]:
    """precision@k, recall@k and NDCG@k of every row of ``truth`` that has relevant items.

    ``recs[i]`` ranks items for the user of ``truth`` row ``i``; ``NONE`` slots are empty.
    Precision divides by the number of items that could be listed (``k``, or fewer when
    fewer were left to recommend); the ideal DCG puts ``min(relevant, k)`` hits first.
    """
    n_true = truth.getnnz(axis=1)
    keep = n_true > 0
    recs, truth, n_true = recs[keep][:, :k], truth[keep].tocsr(), n_true[keep]
    n, width = recs.shape
    if n == 0 or width == 0:
        zero = np.zeros(n)
        return {f"precision@{k}": zero, f"recall@{k}": zero, f"ndcg@{k}": zero}
    valid = recs != NONE
    rows = np.repeat(np.arange(n), width)
    hits = np.asarray(truth[rows, np.where(valid, recs, 0).ravel()]).reshape(recs.shape) > 0
    hits &= valid
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[:width]).sum(axis=1)
    idcg = np.cumsum(discounts)[np.minimum(n_true, k) - 1]
    n_hits = hits.sum(axis=1)
    listed = np.maximum(valid.sum(axis=1), 1)
    return {
        f"precision@{k}": n_hits / np.minimum(listed, k),
        f"recall@{k}": n_hits / n_true,
        f"ndcg@{k}": dcg / idcg,
    }


def ranking_metrics(recs: np.ndarray, truth: sp.csr_matrix, n_items: int, k: int = K) -> dict:
    """Mean precision@k, recall@k, NDCG@k (binary relevance) and catalogue coverage.

    Rows with an empty truth are ignored (``users`` counts the others). Coverage is the
    share of the catalogue that appears in the evaluated lists (empty slots do not count).
    """
    per_user = per_user_metrics(recs, truth, k)
    keep = truth.getnnz(axis=1) > 0
    listed = recs[keep][:, :k]
    listed = listed[listed != NONE]
    n = int(keep.sum())
    out: dict[str, Any] = {name: float(v.mean()) if n else 0.0 for name, v in per_user.items()}
    out["coverage"] = float(len(np.unique(listed)) / n_items) if n_items and n else 0.0
    out["users"] = n
    return out
