"""Use case: Silver orders -> tuned model + baselines on a per-customer split -> registry.

The same function serves ``shoplake train``, the Airflow DAG and the tests; the tests
hand it an orders table directly, everything else reads Silver from the lake.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from jobs.adapters.registry import ModelRegistry, PromotionPolicy, Registration
from jobs.bootstrap import Resources
from jobs.domain import reco_eval as ev
from jobs.domain import recommender as rec
from jobs.domain.reco_summary import MODEL, POPULAR, ModelSummary
from jobs.errors import ShoplakeError
from jobs.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how: the split, the search budget, the promotion minimum.

    ``tune_seconds=0`` skips the search and serves ALS with ``params``. ``holdout_share``
    (or ``holdout_last`` purchases) of each customer's history is the test split; the
    same share of the rest is the validation split the search reads.
    """

    params: rec.ALSParams = field(default_factory=rec.ALSParams)
    holdout_share: float = 0.1
    holdout_last: int | None = None
    min_history: int = 3
    tune_seconds: float = 30.0
    min_customers: int = ev.MIN_CUSTOMERS
    window_days: int | None = None  # None: every Silver day
    k: int = rec.K

    def protocol(self) -> ev.Protocol:
        split = ev.SplitRule(self.holdout_share, self.holdout_last, self.min_history)
        return ev.Protocol(split, self.tune_seconds, self.params, self.min_customers, self.k)


@dataclass(frozen=True)
class TrainResult:
    """The registration plus the summary (metrics and baselines) it was judged on."""

    registration: Registration
    summary: ModelSummary

    @property
    def metrics(self) -> dict[str, Any]:
        return self.summary.metrics()

    def line(self) -> str:
        s, r = self.summary, self.registration
        lift = s.lifts.get(POPULAR)
        versus = f" (x{lift.value:.2f})" if lift else ""
        model, pop = s.scores[MODEL], s.scores[POPULAR]
        return (
            f"{r.version} ({', '.join(r.aliases)}): NDCG@10 {model.ndcg.value:.4f} vs popularity "
            f"{pop.ndcg.value:.4f}{versus}, recall@10 {model.recall.value:.4f}, coverage "
            f"{model.coverage:.2%}; {r.reason}"
        )

    def report(self) -> str:
        """The line, then the model against each baseline with intervals (``shoplake train``)."""
        return "\n".join([self.line(), *self.summary.lines()])


def read_silver_orders(settings: Settings, window_days: int | None = None) -> pa.Table:
    """Every Silver orders partition (or the last ``window_days`` of them) as one table."""
    from jobs.adapters.lake.layout import SILVER_ORDERS

    lake = Resources(settings).lake
    days = lake.partitions(SILVER_ORDERS)
    if window_days:
        days = days[-window_days:]
    if not days:
        raise ShoplakeError("no Silver orders in the lake: run `shoplake medallion backfill` first")
    tables = [lake.read_table(SILVER_ORDERS, d) for d in days]
    return pa.concat_tables(tables, promote_options="permissive")


def fit_bundle(orders: Any, config: TrainConfig | None = None) -> rec.ModelBundle:
    """Choose and evaluate (validation, then test once), then refit on every order.

    The served bundle learns from all orders, the held-out ones too: they are the freshest.
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    table = rec.as_table(orders)
    try:
        chosen, summary = ev.choose_and_evaluate(table, config.protocol())
    except ev.NotEnoughData as exc:
        raise ShoplakeError(f"not enough orders to train: {exc}") from None
    full = rec.build_interactions(table)
    users, items = ev.export(full, chosen, table)
    info = {
        "model": summary.model,
        "params": asdict(chosen),
        "holdout": summary.protocol,
        "orders": table.num_rows,
        "customers": len(full.customer_ids),
        "products": len(full.product_ids),
        "popular_by_region": rec.popular_by_group(table, full, "region"),
        "train_seconds": round(time.perf_counter() - started, 1),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return rec.ModelBundle(
        user_factors=users,
        item_factors=items,
        customer_ids=full.customer_ids,
        product_ids=full.product_ids,
        product_names=full.product_names,
        categories=full.categories,
        popularity=rec.popularity(full.matrix),
        bought=full.matrix,
        metrics=summary.metrics(),
        info=info,
        summary=summary,
    )


def train(
    settings: Settings,
    *,
    orders: Any | None = None,
    config: TrainConfig | None = None,
    registry: ModelRegistry | None = None,
    policy: PromotionPolicy | None = None,
) -> TrainResult:
    """Train from Silver (or ``orders``), evaluate, register; ``production`` per the policy."""
    config = config or TrainConfig()
    if orders is None:
        orders = read_silver_orders(settings, config.window_days)
    bundle = fit_bundle(orders, config)
    policy = policy or PromotionPolicy(min_customers=config.min_customers)
    summary = bundle.summary
    assert summary is not None
    if policy.enabled and not summary.sufficient:
        # a version that can never be promoted would only fill the registry
        raise ShoplakeError(f"not enough orders to train: {summary.message}")
    registry = registry or Resources(settings).registry(policy)
    result = TrainResult(registry.register(bundle), summary)
    log.info("trained %s", result.line())
    return result


def ensure_model(settings: Settings, registry: ModelRegistry | None = None) -> TrainResult | None:
    """Train once when the registry has no ``production`` version yet (``shoplake up``)."""
    registry = registry or Resources(settings).registry()
    if registry.has_production():
        return None
    return train(settings, registry=registry, policy=PromotionPolicy(enabled=False))
