"""An evaluation protocol that cannot fool itself, baselines, tuning and the model summary.

- ``customer_split``: each customer's last purchases (a share or a count) are held out, so
  every evaluated customer has a history and bursts of buying do not empty the hold-out.
  Applied twice it gives train / validation / test: tuning reads validation only; the
  test split is scored once, for the chosen model and the baselines alike.
- ``score_methods``: the model and the baselines (most popular, item-item cosine kNN) on the
  same truth with the same metric code, with bootstrap confidence intervals (customers
  resampled, paired across methods so that ratios get intervals too).
- ``ModelSummary``: the typed record that training writes, the registry stores and the API
  shows. It carries a lift only when enough customers were evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from jobs.domain import recommender as rec
from jobs.domain.reco_summary import (
    ITEMKNN,
    MODEL,
    POPULAR,
    Interval,
    MethodScore,
    ModelSummary,
    Tuning,
)

MIN_CUSTOMERS = 50  # below this many evaluated customers: no lift, no promotion
BOOTSTRAP = 1000
Params = rec.ALSParams | rec.EASEParams | rec.KNNParams
Scorer = Callable[[np.ndarray], np.ndarray]  # user rows of the train matrix -> item scores


# ---------------------------------------------------------------- the split


@dataclass(frozen=True)
class SplitRule:
    """Which purchases of each customer are held out: the last ``fraction`` or ``last``.

    Customers with fewer than ``min_history`` purchases stay whole in training; every
    other keeps at least one purchase there.
    """

    fraction: float = 0.1
    last: int | None = None  # hold out the last K purchases instead of a share
    min_history: int = 3

    def describe(self) -> str:
        what = f"last {self.last}" if self.last else f"last {self.fraction:.0%}"
        return (
            f"per-customer temporal split: each customer's {what} purchases held out "
            f"(customers with at least {self.min_history} purchases)"
        )


def _from_end(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer ids, customer code per row, position from the customer's latest purchase).

    Purchases are ordered by ``order_date``, ties by row order: 0 is the latest.
    """
    cust = rec._strings(table, "customer_id")
    stamps = pc.cast(pc.cast(table.column("order_date"), pa.timestamp("us", tz="UTC")), pa.int64())
    when = np.asarray(stamps.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    ids, codes, counts = np.unique(cust, return_inverse=True, return_counts=True)
    order = np.lexsort((np.arange(len(cust)), when, codes))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sorted_codes = codes[order]
    pos = np.empty(len(cust), dtype=np.int64)
    pos[order] = counts[sorted_codes] - 1 - (np.arange(len(order)) - starts[sorted_codes])
    return ids, codes, pos


def customer_split(orders: Any, rule: SplitRule) -> tuple[pa.Table, pa.Table]:
    """(kept, held out): each customer's latest purchases per ``rule`` go to the hold-out.

    Purchases are ordered by ``order_date`` (ties by row order), so the split is
    deterministic. Rows without a customer stay in ``kept``.
    """
    table = rec.as_table(orders)
    if table.num_rows == 0:
        return table, table
    ids, codes, pos = _from_end(table)
    counts = np.bincount(codes, minlength=len(ids))
    if rule.last:
        n_hold = np.full(len(counts), rule.last)
    else:
        n_hold = np.maximum(1, np.floor(counts * rule.fraction).astype(np.int64))
    n_hold = np.minimum(n_hold, counts - 1)
    n_hold[counts < max(rule.min_history, 2)] = 0
    held = (pos < n_hold[codes]) & (ids[codes] != "")
    mask = pa.array(held)
    return table.filter(pc.invert(mask)), table.filter(mask)


def recency(orders: Any, inter: rec.Interactions, half_life: float | None) -> sp.csr_matrix:
    """Customers x items weights of a profile that favours recent purchases.

    An item's weight is ``0.5 ** (p / half_life)``, ``p`` counting the customer's purchases
    made after their latest purchase of it (0: the latest); ``None`` weighs all alike.
    """
    bought = rec.binary(inter.matrix)
    if half_life is None:
        return bought
    table = rec.as_table(orders)
    ids, codes, pos = _from_end(table)
    prod = rec._strings(table, "product_id")
    rows = rec._positions(inter.customer_ids, ids)[codes]
    cols = rec._positions(inter.product_ids, prod)
    ok = (rows >= 0) & (cols >= 0)
    weight = np.power(0.5, pos[ok] / half_life).astype(np.float32)
    # the latest purchase of an item counts: the largest weight of each (customer, item)
    order = np.lexsort((-weight, cols[ok], rows[ok]))
    r, c, w = rows[ok][order], cols[ok][order], weight[order]
    first = np.ones(len(r), dtype=bool)
    first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return sp.csr_matrix((w[first], (r[first], c[first])), shape=inter.matrix.shape)


# ---------------------------------------------------------------- the methods


def fit_scorer(inter: rec.Interactions, params: Params, orders: Any = None) -> Scorer:
    """Fit one method on ``inter`` (built from ``orders``); a function scoring its user rows.

    EASE with a ``half_life`` scores from a recency-weighted profile (needs ``orders``).
    """
    matrix = inter.matrix
    if isinstance(params, rec.ALSParams):
        users, items = rec.fit_als(matrix, params)
        return lambda rows: users[rows] @ items.T
    if isinstance(params, rec.EASEParams):
        weights = rec.fit_ease(matrix, params)
        profile = recency(orders, inter, params.half_life) if params.half_life else None
        profile = rec.binary(matrix) if profile is None else profile
        return lambda rows: np.asarray(profile[rows] @ weights)
    bought = rec.binary(matrix)
    sim = rec.fit_itemknn(matrix, params)
    return lambda rows: np.asarray((bought[rows] @ sim).todense())


def popular_scorer(matrix: sp.csr_matrix) -> Scorer:
    pop = rec.popularity(matrix)
    return lambda rows: np.broadcast_to(pop, (len(rows), len(pop)))


def kind_of(params: Params) -> str:
    if isinstance(params, rec.ALSParams):
        return "als"
    return "ease" if isinstance(params, rec.EASEParams) else "itemknn"


@dataclass(frozen=True)
class Holdout:
    """The truth of one evaluation: new purchases of known items by known customers."""

    users: np.ndarray  # train-matrix rows of the evaluated customers
    truth: sp.csr_matrix  # their held-out new items (rows aligned with ``users``)
    seen: sp.csr_matrix  # their training purchases (never recommended)
    held_customers: int  # customers with any held-out purchase
    unseen_items: int  # held-out purchases of items unknown to training (not scorable)
    repeats: int  # held-out purchases of items the customer had already bought

    @property
    def customers(self) -> int:
        return len(self.users)

    @property
    def items(self) -> int:
        return len(np.unique(self.truth.indices))


def holdout(train: rec.Interactions, held: rec.Interactions) -> Holdout:
    """Who and what gets evaluated, and how much of the hold-out could not be (counted)."""
    on_train = rec.align(held, train.customer_ids, held.product_ids)
    known = rec._positions(train.product_ids, held.product_ids) >= 0
    unseen = int(on_train[:, ~known].sum()) if len(known) else 0
    truth_all = rec.align(held, train.customer_ids, train.product_ids)
    again = truth_all.multiply(train.matrix > 0)
    truth = (truth_all - again).tocsr()
    truth.eliminate_zeros()
    users = np.flatnonzero(truth.getnnz(axis=1))
    return Holdout(
        users=users,
        truth=truth[users],
        seen=train.matrix[users],
        held_customers=int((on_train.getnnz(axis=1) > 0).sum()),
        unseen_items=unseen,
        repeats=int(again.sum()),
    )


def rank(scorer: Scorer, ho: Holdout, k: int, chunk: int = 2048) -> np.ndarray:
    """Top-``k`` lists of every evaluated customer, in chunks (dense scores stay small)."""
    parts = [
        rec.ranked(scorer(ho.users[i : i + chunk]), ho.seen[i : i + chunk], k)
        for i in range(0, len(ho.users), chunk)
    ]
    return np.vstack(parts) if parts else np.empty((0, k), dtype=np.int64)


def ndcg_of(scorer: Scorer, ho: Holdout, k: int) -> float:
    if ho.customers == 0:
        return 0.0
    return float(rec.per_user_metrics(rank(scorer, ho, k), ho.truth, k)[f"ndcg@{k}"].mean())


# ---------------------------------------------------------------- scoring


def bootstrap(
    per_user: dict[str, dict[str, np.ndarray]], n: int = BOOTSTRAP, seed: int = 0
) -> tuple[dict[str, dict[str, Interval]], np.ndarray]:
    """95 % percentile intervals of each method's mean metrics over resampled customers.

    The same resamples serve every method (paired); returns the intervals and the
    resampled mean NDCG per method (columns in ``per_user`` order) for ratio intervals.
    """
    methods = list(per_user)
    users = len(next(iter(per_user[methods[0]].values())))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, users, size=(n, users)) if users else np.zeros((n, 0), int)
    out: dict[str, dict[str, Interval]] = {}
    ndcg_draws = []
    for method in methods:
        out[method] = {}
        for name, values in per_user[method].items():
            means = values[picks].mean(axis=1) if users else np.zeros(n)
            low, high = np.percentile(means, [2.5, 97.5])
            mean = float(values.mean()) if users else 0.0
            out[method][name] = Interval(value=mean, low=float(low), high=float(high))
            if name.startswith("ndcg@"):
                ndcg_draws.append(means)
    return out, np.column_stack(ndcg_draws)


def score_methods(
    train: rec.Interactions,
    ho: Holdout,
    scorers: dict[str, Scorer],
    k: int = rec.K,
    min_customers: int = MIN_CUSTOMERS,
) -> tuple[dict[str, MethodScore], dict[str, Interval], str]:
    """Every method on the same hold-out with the same metric code: scores, lifts, message.

    Lifts are model / baseline NDCG@k with paired intervals; none when fewer than
    ``min_customers`` customers were evaluated (then ``message`` says so).
    """
    n_items = train.matrix.shape[1]
    per_user, coverage = {}, {}
    for name, scorer in scorers.items():
        recs = rank(scorer, ho, k)
        per_user[name] = rec.per_user_metrics(recs, ho.truth, k)
        listed = recs[recs != rec.NONE]
        coverage[name] = float(len(np.unique(listed)) / n_items) if n_items else 0.0
    intervals, draws = bootstrap(per_user)
    scores = {
        name: MethodScore(
            ndcg=intervals[name][f"ndcg@{k}"],
            recall=intervals[name][f"recall@{k}"],
            precision=float(per_user[name][f"precision@{k}"].mean()) if ho.customers else 0.0,
            coverage=coverage[name],
        )
        for name in scorers
    }
    if ho.customers < min_customers:
        message = (
            f"only {ho.customers} customers evaluated (minimum {min_customers}): no lift is "
            "reported and the model is not promoted; train on more history"
        )
        return scores, {}, message
    lifts: dict[str, Interval] = {}
    names = list(scorers)
    model_col = names.index(MODEL)
    for j, name in enumerate(names):
        if name == MODEL:
            continue
        base = scores[name].ndcg.value
        if base <= 0:
            continue  # a baseline that never hits: a ratio would be inf
        ratios = draws[:, model_col] / np.where(draws[:, j] > 0, draws[:, j], np.nan)
        low, high = np.nanpercentile(ratios, [2.5, 97.5])
        lifts[name] = Interval(
            value=scores[MODEL].ndcg.value / base, low=float(low), high=float(high)
        )
    return scores, lifts, ""


# ---------------------------------------------------------------- tuning


EASE_MAX_ITEMS = 20_000  # EASE inverts a dense items x items matrix
EXPORT_RANK = 256  # factors of an item-item model served as factors


def candidates(n_items: int, seed: int = 42) -> list[Params]:
    """The search space, in the order it is tried: each family's usual best first.

    Item-item kNN first (cheap; its best setting is also the baseline's), EASE (several
    recency half-lives share one fit per penalty) while its dense inverse fits, then more of
    both, then a random ALS search.
    """
    rng = np.random.default_rng(seed)
    ease = n_items <= EASE_MAX_ITEMS  # (items bought by at least two customers)
    out: list[Params] = [rec.KNNParams(neighbours=100, shrink=10.0)]
    if ease:
        out.append(rec.EASEParams(l2=300.0, half_life=5.0))
    out.append(rec.KNNParams(neighbours=50, shrink=50.0))
    if ease:
        for l2 in (300.0, 100.0, 1000.0):
            out += [
                rec.EASEParams(l2=l2, half_life=h)
                for h in (5.0, 20.0, None, 2.0)
                if (l2, h) != (300.0, 5.0)
            ]
    out.append(rec.ALSParams(factors=64, regularization=1.0, alpha=10.0, iterations=15))
    out += [
        rec.ALSParams(
            factors=int(rng.choice([32, 64, 128])),
            regularization=float(10 ** rng.uniform(-2, 1.5)),
            alpha=float(10 ** rng.uniform(-0.5, 1.7)),
            iterations=15,
        )
        for _ in range(12)
    ]
    return out


def tune(
    train: rec.Interactions,
    val: rec.Interactions,
    space: list[Params],
    budget_seconds: float,
    orders: Any = None,
    k: int = rec.K,
) -> tuple[Params, Tuning]:
    """Try ``space`` in order on the validation split until the time budget is spent.

    ``train`` is built from ``orders`` (recency profiles need the dates). A candidate whose
    family took longer last time than the budget has left is skipped. Returns the best
    parameters by validation NDCG@k; the first candidate always runs.
    """
    ho = holdout(train, val)
    start = time.perf_counter()
    best: tuple[float, Params] | None = None
    per_kind: dict[str, float] = {}
    best_of: dict[str, Params] = {}
    ease: dict[float, np.ndarray] = {}  # one EASE fit serves every half-life
    trials = 0
    took: dict[str, float] = {}  # the last trial's seconds per family: what the next costs
    for params in space:
        elapsed = time.perf_counter() - start
        if trials and elapsed > budget_seconds:
            break
        kind = kind_of(params)
        cached = isinstance(params, rec.EASEParams) and params.l2 in ease
        if trials and not cached and elapsed + took.get(kind, 0.0) > budget_seconds:
            continue  # would overrun the budget; a cheaper candidate further on may fit
        began = time.perf_counter()
        if isinstance(params, rec.EASEParams):
            if params.l2 not in ease:
                ease[params.l2] = rec.fit_ease(train.matrix, params)
            weights = ease[params.l2]
            score = ndcg_of(ease_scorer(weights, recency(orders, train, params.half_life)), ho, k)
        else:
            score = ndcg_of(fit_scorer(train, params, orders), ho, k)
        if not cached:
            took[kind] = time.perf_counter() - began
        trials += 1
        if score > per_kind.get(kind, -1.0):
            per_kind[kind], best_of[kind] = score, params
        if best is None or score > best[0]:
            best = (score, params)
    assert best is not None, "an empty search space"
    chosen = best[1]
    return chosen, Tuning(
        trials=trials,
        seconds=round(time.perf_counter() - start, 2),
        budget_seconds=budget_seconds,
        chosen=f"{kind_of(chosen)} {asdict(chosen)}",
        validation_ndcg={kind: round(v, 5) for kind, v in per_kind.items()},
        best={kind: asdict(p) for kind, p in best_of.items()},
    )


def export(
    inter: rec.Interactions, params: Params, orders: Any = None, rank: int = EXPORT_RANK
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) factors of the model as served: ALS as is, item-item models low-rank.

    An item-item model's weights ``W`` become ``left @ right.T``; a customer's vector is
    their profile times ``left`` and the items' vectors are ``right`` (what Annoy indexes).
    """
    if isinstance(params, rec.ALSParams):
        return rec.fit_als(inter.matrix, params)
    if isinstance(params, rec.EASEParams):
        weights = rec.fit_ease(inter.matrix, params)
        profile = recency(orders, inter, params.half_life)
    else:
        weights = rec.fit_itemknn(inter.matrix, params)
        profile = rec.binary(inter.matrix)
    left, right = rec.low_rank(weights, rank)
    users = np.asarray(profile @ left, dtype=np.float32)
    return np.ascontiguousarray(users), right


def ease_scorer(weights: np.ndarray, profile: sp.csr_matrix) -> Scorer:
    return lambda rows: np.asarray(profile[rows] @ weights)


def factors_scorer(users: np.ndarray, items: np.ndarray) -> Scorer:
    return lambda rows: users[rows] @ items.T


def params_of(kind: str, values: dict[str, Any]) -> Params:
    """Parameters back from ``kind`` and ``asdict`` (the tuning record, the CLI)."""
    cls = {"als": rec.ALSParams, "ease": rec.EASEParams, "itemknn": rec.KNNParams}[kind]
    return cls(**values)


@dataclass(frozen=True)
class Protocol:
    """How to evaluate and choose: the split rule, tuning budget, minimum customers, k."""

    split: SplitRule = field(default_factory=SplitRule)
    tune_seconds: float = 60.0  # 0: no search, serve ``fixed``
    fixed: Params = field(default_factory=rec.ALSParams)
    min_customers: int = MIN_CUSTOMERS
    k: int = rec.K


class NotEnoughData(ValueError):
    """Too few orders to split, train and evaluate at all."""


def choose_and_evaluate(orders: Any, protocol: Protocol) -> tuple[Params, ModelSummary]:
    """Tune on validation, then score the chosen model and the baselines once on test.

    Train / validation / test come from applying the split rule twice. The chosen model is
    scored as it will be served (``export``'s factors); the kNN baseline uses the best kNN
    parameters the search found (the defaults without a search).
    """
    table = rec.as_table(orders)
    kept, test = customer_split(table, protocol.split)
    kept_i, test_i = rec.build_interactions(kept), rec.build_interactions(test)
    ho = holdout(kept_i, test_i) if min(kept_i.matrix.shape) >= 2 else None
    if ho is None or ho.customers == 0:
        raise NotEnoughData(
            f"{kept.num_rows} orders kept and {test.num_rows} held out "
            f"({protocol.split.describe()}): no customer has a new purchase to evaluate"
        )
    chosen, tuning = protocol.fixed, Tuning()
    if protocol.tune_seconds > 0:
        fit_part, val = customer_split(kept, protocol.split)
        fit_i, val_i = rec.build_interactions(fit_part), rec.build_interactions(val)
        if min(fit_i.matrix.shape) >= 2 and holdout(fit_i, val_i).customers > 0:
            active = int((rec.binary(fit_i.matrix).sum(axis=0) >= 2).sum())
            space = candidates(active)
            chosen, tuning = tune(fit_i, val_i, space, protocol.tune_seconds, fit_part, protocol.k)
    knn = tuning.best.get("itemknn")
    knn_params = rec.KNNParams(**knn) if knn else rec.KNNParams()
    users, items = export(kept_i, chosen, kept)
    scorers = {
        MODEL: factors_scorer(users, items),
        POPULAR: popular_scorer(kept_i.matrix),
        ITEMKNN: fit_scorer(kept_i, knn_params),
    }
    scores, lifts, message = score_methods(kept_i, ho, scorers, protocol.k, protocol.min_customers)
    summary = ModelSummary(
        model=kind_of(chosen),
        params=asdict(chosen),
        k=protocol.k,
        protocol=protocol.split.describe() + "; tuned on the same split of the rest",
        evaluated_customers=ho.customers,
        evaluated_items=ho.items,
        holdout_customers=ho.held_customers,
        unseen_items=ho.unseen_items,
        repeat_purchases=ho.repeats,
        min_customers=protocol.min_customers,
        scores=scores,
        lifts=lifts,
        tuning=tuning,
        message=message,
    )
    return chosen, summary
