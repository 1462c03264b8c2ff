"""Use case: Silver orders -> ALS factors -> hold-out evaluation -> model registry.

The same function serves ``shoplake train``, the Airflow DAG and the tests; the tests
hand it an orders table directly, everything else reads Silver from the lake.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from jobs.adapters.registry import ModelRegistry, PromotionPolicy, Registration
from jobs.bootstrap import Resources
from jobs.domain import recommender as rec
from jobs.errors import ShoplakeError
from jobs.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """What to train on and how: ALS parameters, hold-out length, history window."""

    params: rec.ALSParams = field(default_factory=rec.ALSParams)
    holdout_days: int = 7
    window_days: int | None = None  # None: every Silver day
    k: int = rec.K


@dataclass(frozen=True)
class TrainResult:
    """The registration plus the hold-out metrics it was judged on."""

    registration: Registration
    metrics: dict[str, Any]

    def line(self) -> str:
        m, r = self.metrics, self.registration
        return (
            f"{r.version} ({', '.join(r.aliases)}): NDCG@10 {m['ndcg@10']:.4f} vs popularity "
            f"{m['popularity_ndcg@10']:.4f} (x{m['lift_ndcg@10']:.2f}), recall@10 "
            f"{m['recall@10']:.4f}, coverage {m['coverage']:.2%}; {r.reason}"
        )


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
    """Evaluate on the last days, then refit on every order: the bundle that gets served."""
    config = config or TrainConfig()
    train_orders, test_orders, cutoff = rec.time_split(orders, config.holdout_days)
    train, test = rec.build_interactions(train_orders), rec.build_interactions(test_orders)
    if min(train.matrix.shape) < 2 or test.matrix.nnz == 0:
        raise ShoplakeError(
            f"not enough orders to train: {train_orders.num_rows} before {cutoff}, "
            f"{test_orders.num_rows} in the {config.holdout_days}-day hold-out"
        )
    metrics = rec.evaluate_holdout(train, test, config.params, config.k)
    # the served model also learns from the hold-out days: they are the freshest signal
    full = rec.build_interactions(orders)
    users, items = rec.fit_als(full.matrix, config.params)
    info = {
        "params": asdict(config.params),
        "holdout_days": config.holdout_days,
        "holdout_start": cutoff.isoformat(),
        "orders": rec.as_table(orders).num_rows,
        "customers": len(full.customer_ids),
        "products": len(full.product_ids),
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
        metrics=metrics,
        info=info,
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
    registry = registry or Resources(settings).registry(policy)
    result = TrainResult(registry.register(bundle), bundle.metrics)
    log.info("trained %s", result.line())
    return result


def ensure_model(settings: Settings, registry: ModelRegistry | None = None) -> TrainResult | None:
    """Train once when the registry has no ``production`` version yet (``shoplake up``)."""
    registry = registry or Resources(settings).registry()
    if registry.has_production():
        return None
    return train(settings, registry=registry, policy=PromotionPolicy(enabled=False))
