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
    result = training.train(folder_settings)
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
    assert bundle.info["holdout_start"] == "2025-03-25"  # the last 7 days of 2025-03-31
    assert bundle.user_factors.shape == (len(bundle.customer_ids), 16)
    # same data, same seed: same metrics, and "not worse" promotes the retrain
    again = training.train(folder_settings)
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
