"""Model registry: versions, aliases, promotion, loading (local); W&B offline behaviour."""

from __future__ import annotations

import json
import socket
import struct
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from jobs.adapters.registry import PromotionPolicy
from jobs.adapters.registry.bundle_io import FILES
from jobs.adapters.registry.local import LocalRegistry
from jobs.adapters.registry.wandb import WandbRegistry
from jobs.bootstrap import registry_for
from jobs.domain.reco_summary import Interval, MethodScore, ModelSummary, Tuning
from jobs.domain.recommender import ModelBundle
from jobs.errors import ServiceUnavailable
from jobs.settings import Settings


def bundle(ndcg: float, seed: int = 0) -> ModelBundle:
    rng = np.random.default_rng(seed)
    return ModelBundle(
        user_factors=rng.normal(size=(5, 3)).astype(np.float32),
        item_factors=rng.normal(size=(4, 3)).astype(np.float32),
        customer_ids=np.array([f"CUST-{i}" for i in range(5)], dtype=object),
        product_ids=np.array([f"PROD-{i}" for i in range(4)], dtype=object),
        product_names=np.array(["Mug", "Pen", "Cup", "Lamp"], dtype=object),
        categories=np.array(["Home", "Office", "Home", "Home"], dtype=object),
        popularity=np.array([3, 1, 2, 0], dtype=np.float32),
        bought=sp.csr_matrix(np.eye(5, 4, dtype=np.float32)),
        metrics={"ndcg@10": ndcg, "recall@10": 0.2},
        info={"params": {"factors": 3}},
    )


def test_versions_aliases_and_promotion(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path)
    first = reg.register(bundle(0.20))
    assert (first.version, first.promoted, first.reason) == ("v1", True, "first version")
    better = reg.register(bundle(0.25, seed=1))
    assert better.version == "v2" and better.promoted and better.previous_production == "v1"
    worse = reg.register(bundle(0.10, seed=2))
    assert worse.version == "v3" and not worse.promoted and "worse than v2" in worse.reason
    assert reg.versions() == ["v1", "v2", "v3"]
    assert reg.aliases() == {"latest": "v3", "production": "v2"}
    equal = reg.register(bundle(0.25, seed=3))  # "not worse" includes equal
    assert equal.promoted and reg.resolve("production") == "v4"


def test_promotion_is_configurable(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path, policy=PromotionPolicy(tolerance=0.1))
    reg.register(bundle(0.20))
    assert reg.register(bundle(0.19)).promoted  # within 10 %
    assert not reg.register(bundle(0.10)).promoted
    forced = LocalRegistry(tmp_path, policy=PromotionPolicy(enabled=False)).register(bundle(0.01))
    assert forced.promoted and forced.reason == "promotion check disabled"
    strict = PromotionPolicy(metrics=("ndcg@10", "recall@10"))
    assert not strict.allows({"ndcg@10": 0.3, "recall@10": 0.1}, {"ndcg@10": 0.2, "recall@10": 0.2})


def summary(customers: int) -> ModelSummary:
    interval = Interval(value=0.1, low=0.08, high=0.12)
    score = MethodScore(ndcg=interval, recall=interval, precision=0.05, coverage=0.3)
    return ModelSummary(
        model="ease",
        params={"l2": 300.0, "half_life": 5.0},
        k=10,
        protocol="per-customer temporal split",
        evaluated_customers=customers,
        evaluated_items=40,
        holdout_customers=customers + 3,
        unseen_items=2,
        repeat_purchases=1,
        min_customers=50,
        scores={"model": score, "popular": score},
        lifts={"popular": Interval(value=1.0, low=0.9, high=1.1)} if customers >= 50 else {},
        tuning=Tuning(trials=3, seconds=1.5, chosen="ease"),
    )


def test_the_typed_summary_is_stored_and_guards_promotion(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path)
    few = bundle(0.9)
    few = replace(few, summary=summary(12), metrics=summary(12).metrics())
    first = reg.register(few)
    assert not first.promoted and reg.resolve("production") is None
    assert first.reason == "only 12 customers evaluated (minimum 50): not promoted"
    enough = summary(500)
    reg.register(replace(bundle(0.1), summary=enough, metrics=enough.metrics()))
    version, loaded = reg.load("production")
    assert version == "v2" and loaded.summary == enough
    assert loaded.metrics["lift_ndcg@10"] == 1.0 and loaded.metrics["eval_customers"] == 500
    meta = json.loads((tmp_path / "recommender" / "v2" / "meta.json").read_text())
    assert meta["summary"]["scores"]["popular"]["ndcg"]["low"] == 0.08
    assert reg.load("v1")[1].summary == summary(12)  # stored even when not promoted


def test_load_by_alias_and_version_round_trips(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path)
    original = bundle(0.2)
    reg.register(original)
    reg.register(bundle(0.1, seed=5))
    version, loaded = reg.load("production")
    assert version == "v1"
    np.testing.assert_array_equal(loaded.user_factors, original.user_factors)
    np.testing.assert_array_equal(loaded.item_factors, original.item_factors)
    assert loaded.product_names.tolist() == original.product_names.tolist()
    assert (loaded.bought != original.bought).nnz == 0
    assert loaded.metrics == original.metrics
    assert reg.load("latest")[0] == "v2"
    reg.set_alias("production", "v2")
    assert reg.load("production")[0] == "v2"
    with pytest.raises(KeyError, match="no version or alias 'v9'"):
        reg.load("v9")


def test_artifacts_are_safe_formats_only(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path)
    reg.register(bundle(0.2))
    folder = tmp_path / "recommender" / "v1"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in ("factors.npz", "bought.npz"):
        with np.load(folder / name, allow_pickle=False) as npz:  # raises on pickled arrays
            assert all(npz[key].dtype != object for key in npz.files)
    assert json.loads((folder / "meta.json").read_text())["metrics"]["ndcg@10"] == 0.2


def test_registry_is_chosen_by_settings(tmp_path: Path) -> None:
    assert registry_for(Settings(_env_file=None, data_dir=tmp_path)).backend == "local"
    keyed = Settings(_env_file=None, data_dir=tmp_path, WANDB_API_KEY="k" * 40)
    assert registry_for(keyed).backend == "wandb"
    forced = Settings(_env_file=None, data_dir=tmp_path, WANDB_API_KEY="k" * 40, registry="local")
    assert registry_for(forced).backend == "local"


# ---------------------------------------------------------------- W&B, offline
def wandb_records(run_dir: Path) -> list[bytes]:
    """The records of an offline run file (W&B's LevelDB-style log: 32 KiB blocks)."""
    data = next(run_dir.glob("*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too small for a header: padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk
            out.append(buf)
            buf = b""
    return out


def logged_artifacts(run_dir: Path) -> list[object]:
    from wandb.proto import wandb_internal_pb2 as pb

    found = []
    for raw in wandb_records(run_dir):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "artifact":
            found.append(record.artifact)
    return found


def test_wandb_offline_logs_a_model_artifact_with_aliases(tmp_path: Path) -> None:
    reg = WandbRegistry("shoplake-test", run_dir=tmp_path, mode="offline")
    result = reg.register(bundle(0.3))
    # offline the current production is unknown, so the new version is not promoted
    assert not result.promoted and result.aliases == ["latest"]
    assert result.version.startswith("offline-") and "offline" in result.reason
    assert reg.last_run_dir is not None
    (art,) = logged_artifacts(reg.last_run_dir)
    assert (art.name, art.type, list(art.aliases)) == ("recommender", "model", ["latest"])
    assert sorted(entry.path for entry in art.manifest.contents) == sorted(FILES)
    assert json.loads(art.metadata)["metrics"]["ndcg@10"] == 0.3

    forced = WandbRegistry(
        "shoplake-test",
        run_dir=tmp_path / "f",
        mode="offline",
        policy=PromotionPolicy(enabled=False),
    )
    assert forced.register(bundle(0.3)).promoted
    (art,) = logged_artifacts(forced.last_run_dir)  # type: ignore[arg-type]
    assert sorted(art.aliases) == ["latest", "production"]


def test_wandb_load_offline_says_what_is_missing(tmp_path: Path) -> None:
    reg = WandbRegistry("shoplake-test", run_dir=tmp_path, mode="offline")
    with pytest.raises(ServiceUnavailable, match="loading a model needs a W&B server"):
        reg.load("production")


def test_wandb_load_without_a_server_fails_fast_and_clearly(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reg = WandbRegistry(
        "shoplake-test",
        run_dir=tmp_path,
        mode="online",
        timeout=5,
        base_url=f"http://127.0.0.1:{port}",
        api_key="k" * 40,
    )
    start = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port}"):
        reg.load("production")
    assert time.monotonic() - start < 30
