"""The API's /metrics text: the names, types and labels a Prometheus scrape sees."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics


def families(metrics: Metrics) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    text = metrics.render().decode()
    return {
        f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
        for f in text_string_to_metric_families(text)
    }


def test_counts_latencies_and_model_are_exposed() -> None:
    m = Metrics()
    m.observe("/recommend/{customer_id}", "GET", 200, 0.003)
    m.observe("/recommend/{customer_id}", "GET", 200, 0.005)  # on a bound: counted in it
    m.observe("/health", "GET", 503, 3.0)
    m.cache["hit"] += 2
    m.strategy["popular"] += 1
    m.model_version, m.reloads = "v7", 1
    found = families(m)
    kind, samples = found["shoplake_api_requests"]
    assert kind == "counter"
    assert (
        "shoplake_api_requests_total",
        {"route": "/recommend/{customer_id}", "method": "GET", "status": "200"},
        2.0,
    ) in samples
    kind, samples = found["shoplake_api_request_duration_seconds"]
    assert kind == "histogram"
    reco = {s[1].get("le"): s[2] for s in samples if s[1]["route"] == "/recommend/{customer_id}"}
    assert (reco["0.0025"], reco["0.005"], reco["+Inf"]) == (0.0, 2.0, 2.0)
    health = {s[1].get("le"): s[2] for s in samples if s[1]["route"] == "/health"}
    assert (health["2.5"], health["+Inf"]) == (0.0, 1.0)
    assert found["shoplake_api_cache"][1] == [("shoplake_api_cache_total", {"result": "hit"}, 2.0)]
    assert found["shoplake_api_recommendations"][1][0][1:] == ({"strategy": "popular"}, 1.0)
    assert found["shoplake_model_info"] == (
        "gauge",
        [("shoplake_model_info", {"version": "v7"}, 1.0)],
    )
    assert found["shoplake_model_reloads"][1] == [("shoplake_model_reloads_total", {}, 1.0)]


def test_each_app_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.cache["miss"] += 1
    assert 'result="miss"' in a.render().decode()
    assert 'result="miss"' not in b.render().decode()
    assert "_created" not in a.render().decode()
