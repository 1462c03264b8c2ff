"""The recommendation API against a real Redis: cache, reload, auth, errors, schema fuzzing."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import uvicorn
from pydantic import SecretStr
from starlette.testclient import TestClient

from api.app import create_app
from jobs.adapters.registry import PromotionPolicy
from jobs.adapters.registry.local import LocalRegistry
from jobs.domain.recommender import ModelBundle
from jobs.settings import Settings
from jobs.training import TrainConfig, fit_bundle
from tests.unit.test_recommender import generated_orders

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelBundle]:
    """A local registry whose production version v1 was trained on generated orders."""
    root = tmp_path_factory.mktemp("registry")
    bundle = fit_bundle(generated_orders(days=21), TrainConfig())
    LocalRegistry(root).register(bundle)
    return root, bundle


@pytest.fixture
def api_settings(redis_pool_settings: Settings) -> Settings:
    redis.Redis.from_url(redis_pool_settings.redis_url).flushdb()
    return redis_pool_settings.model_copy(update={"api_token": SecretStr(TOKEN)})


@pytest.fixture
def client(api_settings: Settings, trained: tuple[Path, ModelBundle]) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, LocalRegistry(trained[0]))) as c:
        yield c


def known_customer(bundle: ModelBundle) -> tuple[str, set[str]]:
    """A customer with purchases, and the product ids they bought."""
    row = int(bundle.bought.getnnz(axis=1).argmax())
    bought = {bundle.product_ids[i] for i in bundle.bought[row].indices}
    return bundle.customer_ids[row], bought


def test_health_reports_model_and_redis(client: TestClient, trained) -> None:
    for path in ("/", "/health"):
        body = client.get(path).json()
        assert body["status"] == "ok" and body["redis"] == "ok"
        assert body["model_version"] == "v1" and body["registry"] == "local"
        assert body["customers"] == len(trained[1].customer_ids)
        assert body["products"] == len(trained[1].product_ids)


def test_recommend_misses_then_hits_the_cache(client: TestClient, trained) -> None:
    customer, bought = known_customer(trained[1])
    first = client.get(f"/recommend/{customer}", params={"top_n": 7}).json()
    assert (first["cached"], first["strategy"], first["model_version"]) == (False, "personal", "v1")
    items = first["recommendations"]
    assert len(items) == 7 and not {i["product_id"] for i in items} & bought
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    second = client.get(f"/recommend/{customer}", params={"top_n": 7}).json()
    assert second["cached"] is True and second["recommendations"] == items
    other_n = client.get(f"/recommend/{customer}", params={"top_n": 3}).json()
    assert other_n["cached"] is False and other_n["recommendations"] == items[:3]
    metrics = client.get("/metrics").text
    assert 'shoplake_api_cache_total{result="hit"} 1' in metrics
    assert 'shoplake_api_cache_total{result="miss"} 2' in metrics


def test_unknown_customer_gets_popular_products(client: TestClient, trained) -> None:
    body = client.get("/recommend/CUST-NOBODY", params={"top_n": 5}).json()
    assert (body["strategy"], body["cached"]) == ("popular", False)
    pop = trained[1].popularity
    expected = [trained[1].product_ids[i] for i in (-pop).argsort(kind="stable")[:5]]
    assert [i["product_id"] for i in body["recommendations"]] == expected


def test_cold_start_uses_the_customers_region_when_known(client: TestClient, trained) -> None:
    regions = trained[1].info["popular_by_region"]
    region, items = sorted(regions.items())[0]
    body = client.get("/recommend/CUST-NOBODY", params={"top_n": 5, "region": region}).json()
    assert (body["strategy"], body["region"]) == ("popular", region)
    assert [i["product_id"] for i in body["recommendations"]] == [
        trained[1].product_ids[i] for i in items[:5]
    ]
    other = client.get("/recommend/CUST-NOBODY", params={"region": "Atlantis"}).json()
    assert "region" not in other  # unknown region: the overall list
    plain = client.get("/recommend/CUST-NOBODY").json()
    assert other["recommendations"] == plain["recommendations"]


def test_personal_recommendations_name_their_reasons(client: TestClient, trained) -> None:
    customer, bought = known_customer(trained[1])
    names = {trained[1].product_names[list(trained[1].product_ids).index(p)] for p in bought}
    items = client.get(f"/recommend/{customer}", params={"top_n": 5}).json()["recommendations"]
    for item in items:
        assert 1 <= len(item["because"]) <= 2 and set(item["because"]) <= names


def test_model_shows_the_summary_beside_the_baselines(client: TestClient, trained) -> None:
    body = client.get("/model").json()
    summary = trained[1].summary
    assert summary is not None
    assert body["model_version"] == "v1" and body["summary"] == summary.model_dump(mode="json")
    assert set(body["summary"]["scores"]) == {"model", "popular", "itemknn"}
    ndcg = body["summary"]["scores"]["model"]["ndcg"]
    assert ndcg["low"] <= ndcg["value"] <= ndcg["high"]
    assert body["summary"]["evaluated_customers"] == summary.evaluated_customers > 0


@pytest.mark.parametrize("top_n", ["0", "51", "-1", "abc", "1.5", ""])
def test_bad_top_n_is_422(client: TestClient, top_n: str) -> None:
    for path in ("/recommend/CUST-000001", "/similar/anything"):
        response = client.get(path, params={"top_n": top_n})
        assert response.status_code == 422, (path, top_n, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", "top_n"]


def test_overlong_ids_are_422(client: TestClient) -> None:
    assert client.get("/recommend/" + "x" * 201).status_code == 422


def test_similar_products_come_from_the_index(client: TestClient, trained) -> None:
    name = trained[1].product_names[0]
    body = client.get(f"/similar/{name}", params={"top_n": 5}).json()
    assert body["product_name"] == name and len(body["similar"]) == 5
    assert name not in [i["product_name"] for i in body["similar"]]
    sims = [i["similarity"] for i in body["similar"]]
    assert sims == sorted(sims, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in sims)
    assert client.get(f"/similar/{name.upper()}").status_code == 200  # any case


def test_unknown_product_is_404_with_a_message(client: TestClient) -> None:
    response = client.get("/similar/No Such Thing")
    assert response.status_code == 404
    assert "unknown product 'No Such Thing'" in response.json()["detail"]


def test_reload_needs_the_token(client: TestClient) -> None:
    assert client.post("/reload").status_code == 401
    assert client.post("/reload", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json() == {
        "model_version": "v1",
        "previous_version": "v1",
        "changed": False,
    }


def test_reload_without_a_configured_token_is_503(api_settings, trained) -> None:
    settings = api_settings.model_copy(update={"api_token": None})
    with TestClient(create_app(settings, LocalRegistry(trained[0]))) as c:
        response = c.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 503 and "SHOPLAKE_API_TOKEN" in response.json()["detail"]


def test_reload_switches_version_and_never_serves_stale_cache(
    api_settings: Settings, trained, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(trained[0], root)
    registry = LocalRegistry(root, policy=PromotionPolicy(enabled=False))
    customer, _ = known_customer(trained[1])
    with TestClient(create_app(api_settings, registry)) as c:
        c.get(f"/recommend/{customer}")
        assert c.get(f"/recommend/{customer}").json()["cached"] is True
        new = fit_bundle(generated_orders(seed=7, days=21), TrainConfig())
        assert registry.register(new).version == "v2"
        reloaded = c.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert reloaded == {"model_version": "v2", "previous_version": "v1", "changed": True}
        after = c.get(f"/recommend/{customer}").json()
        assert (after["model_version"], after["cached"]) == ("v2", False)
        assert 'shoplake_model_info{version="v2"} 1' in c.get("/metrics").text


def test_redis_down_still_answers_and_health_says_so(trained, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(_env_file=None, data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    customer, _ = known_customer(trained[1])
    with TestClient(create_app(settings, LocalRegistry(trained[0]))) as c:
        start = time.monotonic()
        for _ in range(20):
            body = c.get(f"/recommend/{customer}").json()
            assert (body["cached"], body["strategy"]) == (False, "personal")
        assert time.monotonic() - start < 5  # no timeout per request
        health = c.get("/health").json()
        assert health["status"] == "degraded" and health["redis"].startswith("down")
        assert 'shoplake_api_cache_total{result="unavailable"}' in c.get("/metrics").text


def test_no_model_yet_is_503_not_500(api_settings: Settings, tmp_path: Path) -> None:
    with TestClient(create_app(api_settings, LocalRegistry(tmp_path))) as c:
        assert c.get("/health").json()["status"] == "no_model"
        response = c.get("/recommend/CUST-000001")
        assert response.status_code == 503 and "shoplake train" in response.json()["detail"]


# ---------------------------------------------------------------- schema fuzzing
@pytest.fixture(scope="module")
def live_url(redis_pool_settings: Settings, trained) -> Iterator[str]:
    """The API under uvicorn on a free loopback port, as `shoplake serve` runs it."""
    settings = redis_pool_settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, LocalRegistry(trained[0])),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_schema_fuzzing_finds_no_server_error(live_url: str, tmp_path: Path) -> None:
    """Schemathesis (positive and negative cases, every phase) against the live server."""
    tool = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run(
        [
            str(tool),
            "run",
            f"{live_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "50",
            "--seed",
            "1",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    report = next(tmp_path.glob("*.xml")).read_text()
    assert "<testcase" in report and "<failure" not in report


# ---------------------------------------------------------------- corrupt model versions
def _rewrite_factors(folder: Path, **change: np.ndarray) -> None:
    with np.load(folder / "factors.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(folder / "factors.npz", **(arrays | change))


def _nan_factors(folder: Path) -> None:
    with np.load(folder / "factors.npz") as npz:
        item = npz["item_factors"].copy()
    item[3, 1] = np.nan
    _rewrite_factors(folder, item_factors=item)


def _short_user_factors(folder: Path) -> None:
    with np.load(folder / "factors.npz") as npz:
        user = npz["user_factors"][:-1]
    _rewrite_factors(folder, user_factors=user)


def _factor_counts_disagree(folder: Path) -> None:
    with np.load(folder / "factors.npz") as npz:
        item = npz["item_factors"][:, :-1]
    _rewrite_factors(folder, item_factors=item)


def _short_popularity(folder: Path) -> None:
    with np.load(folder / "factors.npz") as npz:
        pop = npz["popularity"][:-2]
    _rewrite_factors(folder, popularity=pop)


def _unknown_format(folder: Path) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(meta | {"format": 99}))


def _truncated_npz(folder: Path) -> None:
    data = (folder / "factors.npz").read_bytes()
    (folder / "factors.npz").write_bytes(data[: len(data) // 2])


def _garbage_meta(folder: Path) -> None:
    (folder / "meta.json").write_text("{not json")


def _missing_products(folder: Path) -> None:
    (folder / "products.parquet").unlink()


DAMAGE = {
    "nan factors": (_nan_factors, "finite"),
    "user rows vs customers": (_short_user_factors, "customer"),
    "factor counts": (_factor_counts_disagree, "factors"),
    "popularity length": (_short_popularity, "popularity"),
    "unknown format": (_unknown_format, "format"),
    "truncated npz": (_truncated_npz, "factors.npz"),
    "garbage meta": (_garbage_meta, "meta.json"),
    "missing products": (_missing_products, "products.parquet"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_corrupt_version_is_refused_and_the_previous_keeps_serving(
    api_settings: Settings, trained, tmp_path: Path, damage: str
) -> None:
    spoil, reason = DAMAGE[damage]
    root = tmp_path / "registry"
    shutil.copytree(trained[0], root)
    registry = LocalRegistry(root, policy=PromotionPolicy(enabled=False))
    customer, _ = known_customer(trained[1])
    with TestClient(create_app(api_settings, registry)) as c:
        assert registry.register(trained[1]).version == "v2"
        spoil(root / "recommender" / "v2")
        response = c.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert "v2" in detail and reason in detail and "v1" in detail, detail
        health = c.get("/health")
        assert health.status_code == 200 and health.json()["model_version"] == "v1"
        body = c.get(f"/recommend/{customer}").json()
        assert (body["model_version"], body["strategy"]) == ("v1", "personal")
        assert 'shoplake_model_info{version="v1"} 1' in c.get("/metrics").text


def test_a_corrupt_only_version_starts_the_api_without_a_model(
    api_settings: Settings, trained, tmp_path: Path
) -> None:
    root = tmp_path / "registry"
    shutil.copytree(trained[0], root)
    _nan_factors(root / "recommender" / "v1")
    with TestClient(create_app(api_settings, LocalRegistry(root))) as c:
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "no_model"
        assert c.get("/recommend/CUST-000001").status_code == 503
        response = c.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 503 and "v1" in response.json()["detail"]
        assert "finite" in response.json()["detail"]
