"""Training end to end: Silver partitions in a lake folder -> ALS -> evaluation -> registry."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from jobs import training
from jobs.adapters.lake.layout import SILVER_ORDERS
from jobs.adapters.registry.local import LocalRegistry
from jobs.bootstrap import lake_for
from jobs.errors import ShoplakeError
from jobs.settings import Settings
from tests.unit.test_recommender import generated_orders

# the whole search space, not a clock budget: the same data gives the same model
EXHAUSTIVE = training.TrainConfig(tune_seconds=1e9)


def write_silver(settings: Settings, days: int = 21) -> int:
    """Generated orders written as daily Silver partitions; returns the row count."""
    orders = generated_orders(days=days)
    lake = lake_for(settings)
    day_of = pc.cast(orders.column("order_date"), "date32")
    for day in sorted(set(day_of.to_pylist())):
        lake.write_table(SILVER_ORDERS, day, orders.filter(pc.equal(day_of, day)))
    return orders.num_rows


def test_train_reads_silver_and_registers_production(folder_settings: Settings) -> None:
    rows = write_silver(folder_settings)
    result = training.train(folder_settings, config=EXHAUSTIVE)
    reg = result.registration
    assert (reg.version, reg.promoted, sorted(reg.aliases)) == (
        "v1",
        True,
        ["latest", "production"],
    )
    assert result.metrics["eval_customers"] > 50
    registry = LocalRegistry(folder_settings.data_path / "registry")
    version, bundle = registry.load("production")
    assert version == "v1" and bundle.info["orders"] == rows
    # each customer's last 10 % of purchases was the test, the 10 % before the validation
    assert bundle.info["holdout"].startswith("per-customer temporal split")
    assert bundle.summary is not None and bundle.summary.evaluated_customers > 50
    assert set(bundle.summary.scores) == {"model", "popular", "itemknn"}
    assert bundle.user_factors.shape[0] == len(bundle.customer_ids)
    # same data, same seed: same metrics, and "not worse" promotes the retrain
    again = training.train(folder_settings, config=EXHAUSTIVE)
    assert again.metrics == result.metrics and again.registration.version == "v2"
    assert again.registration.promoted
    assert "NDCG@10" in again.line()


def test_training_window_and_ensure_model(folder_settings: Settings) -> None:
    write_silver(folder_settings, days=21)
    assert training.read_silver_orders(folder_settings, window_days=3).num_rows > 0
    first = training.ensure_model(folder_settings)
    assert first is not None and first.registration.version == "v1"
    assert training.ensure_model(folder_settings) is None  # production exists: nothing to do


def test_empty_lake_is_a_clear_error(folder_settings: Settings) -> None:
    lake_for(folder_settings)  # creates the folder layout
    with pytest.raises(ShoplakeError, match="no Silver orders"):
        training.train(folder_settings)


def test_too_little_history_is_a_clear_error(folder_settings: Settings) -> None:
    orders = generated_orders(days=1)
    with pytest.raises(ShoplakeError, match="not enough orders"):
        training.train(folder_settings, orders=orders)


def test_real_shoppers_prefer_the_tuned_model_to_both_baselines(folder_settings: Settings) -> None:
    """MovieLens (100k real ratings) as orders: the model beats most-popular and item kNN.

    The issue's targets (2x and 1.15x) are checked by benchmarks/bench_recommender.py; here
    the bars are lower so that a loaded machine (a shorter search) does not fail the test.
    """
    from tests.support.movielens import movielens_orders

    orders = movielens_orders()
    result = training.train(
        folder_settings, orders=orders, config=training.TrainConfig(tune_seconds=30.0)
    )
    s = result.summary
    print("\n".join(s.lines()))
    assert s.evaluated_customers >= 600 and s.evaluated_items > 1000
    assert s.lifts["popular"].value >= 1.6 and s.lifts["popular"].low > 1.0
    assert s.lifts["itemknn"].value >= 1.05
    assert result.registration.promoted
    _, bundle = LocalRegistry(folder_settings.data_path / "registry").load("production")
    assert bundle.summary == s and bundle.info["orders"] == orders.num_rows
