"""Recommender maths: metrics by hand, interactions, scoring, ALS, Annoy against exact cosine."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.sparse as sp

from jobs.domain import recommender as rec

UTC = dt.UTC


def orders_table(rows: list[tuple[str, str, str, str, str]]) -> pa.Table:
    """(customer, product, name, category, ISO timestamp) rows as an orders table."""
    cust, prod, name, cat, ts = zip(*rows, strict=True)
    stamps = [dt.datetime.fromisoformat(t).replace(tzinfo=UTC) for t in ts]
    return pa.table(
        {
            "order_date": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "customer_id": list(cust),
            "product_id": list(prod),
            "product_name": list(name),
            "category": list(cat),
        }
    )


def test_metrics_match_a_hand_computed_example() -> None:
    recs = np.array([[0, 1, 2], [2, 0, 1], [3, 2, 1]])
    # user 0 wants {1}; user 1 wants {0, 1}; user 2 wants nothing and is ignored
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]))
    m = rec.ranking_metrics(recs, truth, n_items=4, k=3)
    # precision: (1/3 + 2/3) / 2; recall: (1/1 + 2/2) / 2
    assert m["precision@3"] == pytest.approx(0.5)
    assert m["recall@3"] == pytest.approx(1.0)
    # NDCG: user 0 = (1/log2 3) / 1 = 0.630930; user 1 = (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
    assert m["ndcg@3"] == pytest.approx((0.630930 + 1.130930 / 1.630930) / 2, abs=1e-6)
    assert m["coverage"] == pytest.approx(3 / 4)  # items 0, 1, 2 of users 0 and 1
    assert m["users"] == 2


def test_perfect_and_empty_rankings() -> None:
    truth = sp.csr_matrix(np.array([[1, 1, 0]]))
    assert rec.ranking_metrics(np.array([[0, 1]]), truth, 3, k=2)["ndcg@2"] == pytest.approx(1.0)
    assert rec.ranking_metrics(np.array([[2, 2]]), truth, 3, k=2)["ndcg@2"] == 0.0
    empty = rec.ranking_metrics(np.array([[0, 1]]), sp.csr_matrix((1, 3)), 3, k=2)
    assert empty["users"] == 0 and empty["ndcg@2"] == 0.0


def test_interactions_count_orders_and_skip_missing_ids() -> None:
    table = orders_table(
        [
            ("c2", "p1", "Mug", "Home", "2025-01-01T10:00:00"),
            ("c1", "p1", "Mug", "Home", "2025-01-01T11:00:00"),
            ("c1", "p1", "Mug", "Home", "2025-01-02T11:00:00"),
            ("c1", "p2", "Pen", "Office", "2025-01-03T11:00:00"),
            ("", "p2", "Pen", "Office", "2025-01-03T12:00:00"),
        ]
    )
    inter = rec.build_interactions(table)
    assert inter.customer_ids.tolist() == ["c1", "c2"]
    assert inter.product_ids.tolist() == ["p1", "p2"]
    assert inter.product_names.tolist() == ["Mug", "Pen"]
    assert inter.matrix.toarray().tolist() == [[2, 1], [1, 0]]


def test_customer_split_holds_out_each_customers_latest_purchases() -> None:
    from jobs.domain import reco_eval as ev

    table = orders_table(
        [
            ("c1", "p1", "Mug", "Home", "2025-01-01T10:00:00"),
            ("c1", "p2", "Pen", "Office", "2025-01-02T10:00:00"),
            ("c1", "p1", "Mug", "Home", "2025-01-05T00:00:00"),  # bought before: a repeat
            ("c1", "p3", "Cup", "Home", "2025-01-04T23:59:59"),
            ("c2", "p2", "Pen", "Office", "2025-01-01T12:00:00"),
            ("c2", "p1", "Mug", "Home", "2025-01-09T12:00:00"),
            ("c2", "p4", "Lamp", "Home", "2025-01-08T12:00:00"),
            ("c3", "p2", "Pen", "Office", "2025-01-03T12:00:00"),  # 2 purchases: kept whole
            ("c3", "p9", "Ink", "Office", "2025-01-04T12:00:00"),
        ]
    )
    kept, held = ev.customer_split(table, ev.SplitRule(last=2))
    cust, prod = held["customer_id"].to_pylist(), held["product_id"].to_pylist()
    pairs = sorted(zip(cust, prod, strict=True))
    assert pairs == [("c1", "p1"), ("c1", "p3"), ("c2", "p1"), ("c2", "p4")]
    assert kept.num_rows == 5
    # a share: 10 % of 4 purchases rounds down to 0 but one is always held out
    _, one = ev.customer_split(table, ev.SplitRule(fraction=0.1))
    assert sorted(one["customer_id"].to_pylist()) == ["c1", "c2"]
    ho = ev.holdout(rec.build_interactions(kept), rec.build_interactions(held))
    # c1's p1 is a repeat, p3 and p4 were never bought in training (unseen), c2's p1 is new
    assert (ho.customers, ho.items, ho.repeats, ho.unseen_items) == (1, 1, 1, 2)
    assert ho.held_customers == 2


def test_top_k_orders_scores_and_breaks_ties_by_index() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert rec.top_k(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]
    assert rec.top_k(scores, 10).shape == (2, 4)


def test_recommendations_never_include_bought_items() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    bought = sp.random(30, 20, density=0.3, format="csr", random_state=1)
    recs = rec.recommend_batch(users, items, bought, k=10)
    for u in range(30):
        assert not set(recs[u]) & set(bought[u].indices)
    idx, scores = rec.recommend_one(users[0], items, bought[0].indices, 50)
    assert len(idx) == 20 - bought[0].nnz and not set(idx) & set(bought[0].indices)
    assert np.all(np.diff(scores) <= 0)
    pop = rec.popular_batch(rec.popularity(bought), bought, k=5)
    assert not set(pop[0]) & set(bought[0].indices)


def test_als_is_deterministic_and_learns_blocks() -> None:
    # two groups of customers, each buying only from its own half of the catalogue
    rows, cols = [], []
    for u in range(40):
        half = (u % 2) * 10
        for i in range(half, half + 10):
            if (u + i) % 3:
                rows.append(u)
                cols.append(i)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(40, 20))
    params = rec.ALSParams(factors=4, regularization=0.1, alpha=5.0, iterations=10)
    u1, v1 = rec.fit_als(matrix, params)
    u2, v2 = rec.fit_als(matrix, params)
    np.testing.assert_array_equal(u1, u2)
    np.testing.assert_array_equal(v1, v2)
    recs = rec.recommend_batch(u1, v1, matrix, k=3)
    assert all(((r >= 10) == (u % 2 == 1)).all() for u, r in enumerate(recs))


def test_annoy_agrees_with_exact_cosine_neighbours() -> None:
    from api.index import build_index
    from tests.support.annoy_check import cosine_neighbours, index_recall

    rng = np.random.default_rng(7)
    # clustered item factors, as ALS gives (categories), 2,000 items
    centers = rng.normal(size=(8, 16))
    items = (centers[rng.integers(0, 8, 2000)] + 0.6 * rng.normal(size=(2000, 16))).astype(
        np.float32
    )
    exact = cosine_neighbours(items, 10)
    recall = index_recall(build_index(items), exact, 10)
    print(f"Annoy recall@10 against exact cosine (2,000 items, 16 factors): {recall:.3f}")
    assert recall >= 0.9


def generated_orders(seed: int = 42, days: int = 30, per_day: int = 150) -> pa.Table:
    """Orders from the project's generator, minus the rows Silver would reject."""
    from jobs.domain import generator as gen

    end = dt.date(2025, 3, 31)
    model = gen.build_model(
        seed,
        n_customers=gen.default_customer_count(days * per_day),
        reference=end - dt.timedelta(days=days),
    )
    table = pa.concat_tables(
        gen.orders_for_day(model, seed, end - dt.timedelta(days=i), per_day) for i in range(days)
    )
    keep = pc.and_(pc.is_valid(table.column("customer_id")), pc.greater(table["quantity"], 0))
    return table.filter(keep)


def test_model_is_evaluated_against_popularity_on_generated_data() -> None:
    from jobs.training import TrainConfig, fit_bundle

    bundle = fit_bundle(generated_orders(), TrainConfig(tune_seconds=5.0))
    m = bundle.metrics
    print({k: round(v, 4) for k, v in m.items()})
    assert m["eval_customers"] > 100
    for name in ("precision@10", "recall@10", "ndcg@10", "coverage"):
        assert 0 < m[name] <= 1 and 0 < m[f"popularity_{name}"] <= 1
    assert m["lift_ndcg@10"] == pytest.approx(m["ndcg@10"] / m["popularity_ndcg@10"])
    # personal lists spread over the catalogue; the baseline shows everyone the same few
    assert m["coverage"] > 3 * m["popularity_coverage"]


def history_orders(customers: int = 1000, orders: int = 20_000, days: int = 60) -> pa.Table:
    """Generator orders over ``days`` with ~20 orders per customer (a shop with history)."""
    from jobs.domain import generator as gen

    end = dt.datetime(2025, 3, 31, tzinfo=UTC)
    start = end - dt.timedelta(days=days)
    model = gen.build_model(42, n_customers=customers, n_products=500, reference=start.date())
    table = gen.generate_orders(model, start, end, orders, np.random.default_rng(42))
    keep = pc.and_(pc.is_valid(table.column("customer_id")), pc.greater(table["quantity"], 0))
    return table.filter(keep)


def test_model_beats_popularity_with_a_longer_history() -> None:
    from jobs.training import TrainConfig, fit_bundle

    m = fit_bundle(history_orders(), TrainConfig(tune_seconds=5.0)).metrics
    print(f"NDCG@10 model {m['ndcg@10']:.4f} vs popularity {m['popularity_ndcg@10']:.4f}")
    assert m["ndcg@10"] >= 1.5 * m["popularity_ndcg@10"]


def test_model_beats_popularity_at_the_default_seed_size() -> None:
    from jobs.training import TrainConfig, fit_bundle

    m = fit_bundle(generated_orders(), TrainConfig(tune_seconds=5.0)).metrics
    print(f"default seed size: NDCG@10 {m['ndcg@10']:.4f} vs {m['popularity_ndcg@10']:.4f}")
    assert m["ndcg@10"] >= 1.5 * m["popularity_ndcg@10"]


def test_confidence_is_one_plus_alpha_times_r() -> None:
    counts = sp.csr_matrix(np.array([[1, 0, 3]], dtype=np.float32))
    for alpha in (0.1, 1.0, 10.0):
        conf = rec.confidence(counts, alpha)
        # r = log2(1 + count): one purchase is r = 1, three are r = 2
        assert conf.toarray()[0].tolist() == pytest.approx([1 + alpha, 0.0, 1 + 2 * alpha])
        # implicit reads an absent pair as confidence 1: any alpha > 0 puts a purchase above
        assert conf.data.min() > 1.0


def test_excluded_items_never_fill_a_list_and_short_lists_score_fairly() -> None:
    # customer 0 bought 4 of 5 items: one is left, the other nine slots stay empty
    bought = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    recs = rec.recommend_batch(np.ones((2, 2)), np.ones((5, 2)), bought, k=10)
    assert recs.shape == (2, 5)
    assert recs[0].tolist() == [4, rec.NONE, rec.NONE, rec.NONE, rec.NONE]
    assert sorted(recs[1].tolist()) == [0, 1, 2, 3, 4]
    pop = rec.popular_batch(np.arange(5, dtype=np.float32), bought, k=3)
    assert pop[0].tolist() == [4, rec.NONE, rec.NONE]
    truth = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=np.float32))
    m = rec.ranking_metrics(recs, truth, n_items=5, k=10)
    # customer 0: the one listable item is a hit (precision 1, NDCG 1); customer 1: 1 of 5
    per_user = rec.per_user_metrics(recs, truth, k=10)
    assert per_user["precision@10"].tolist() == pytest.approx([1.0, 0.2])
    assert per_user["ndcg@10"][0] == pytest.approx(1.0)
    assert m["coverage"] == pytest.approx(1.0) and m["users"] == 2  # NONE never counts
    # a catalogue smaller than k: the ideal ranking still scores 1
    full = rec.per_user_metrics(np.array([[2, 0, 1]]), sp.csr_matrix(np.ones((1, 3))), k=10)
    assert full["ndcg@10"][0] == pytest.approx(1.0) and full["precision@10"][0] == 1.0


def block_matrix(users: int = 40, items: int = 20) -> sp.csr_matrix:
    """Two groups of customers, each buying only from its own half of the catalogue."""
    rows, cols = [], []
    half_size = items // 2
    for u in range(users):
        half = (u % 2) * half_size
        for i in range(half, half + half_size):
            if (u + i) % 3:
                rows.append(u)
                cols.append(i)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(users, items))


def test_item_models_learn_blocks_and_export_as_factors() -> None:
    matrix = block_matrix()
    sim = rec.fit_itemknn(matrix, rec.KNNParams(neighbours=5, shrink=1.0))
    assert sim.diagonal().sum() == 0 and (sim.getnnz(axis=0) <= 5).all()
    weights = rec.fit_ease(matrix, rec.EASEParams(l2=10.0))
    assert np.allclose(np.diag(weights), 0)
    for scores in (np.asarray((rec.binary(matrix) @ sim).todense()), rec.binary(matrix) @ weights):
        recs = rec.ranked(scores, matrix, k=3)
        assert all(((r >= 10) == (u % 2 == 1)).all() for u, r in enumerate(recs))
    left, right = rec.low_rank(weights, 20)  # full rank: exact
    np.testing.assert_allclose(left @ right.T, weights, atol=1e-4)
    left, right = rec.low_rank(weights, 4)
    assert right.shape == (20, 4) and left.shape == (20, 4)


def test_recency_profile_favours_the_latest_purchases() -> None:
    from jobs.domain import reco_eval as ev

    table = orders_table(
        [
            ("c1", "p1", "Mug", "Home", "2025-01-01T10:00:00"),
            ("c1", "p2", "Pen", "Office", "2025-01-02T10:00:00"),
            ("c1", "p3", "Cup", "Home", "2025-01-03T10:00:00"),
            ("c1", "p1", "Mug", "Home", "2025-01-04T10:00:00"),  # p1 again: its latest counts
        ]
    )
    inter = rec.build_interactions(table)
    weights = ev.recency(table, inter, half_life=1.0).toarray()[0]
    assert weights.tolist() == pytest.approx([1.0, 0.25, 0.5])
    assert ev.recency(table, inter, None).toarray()[0].tolist() == [1.0, 1.0, 1.0]


def test_too_few_evaluated_customers_give_no_lift_and_no_promotion() -> None:
    from jobs.adapters.registry import PromotionPolicy
    from jobs.domain import reco_eval as ev

    table = generated_orders(days=3)
    kept, held = ev.customer_split(table, ev.SplitRule())
    train, test = rec.build_interactions(kept), rec.build_interactions(held)
    ho = ev.holdout(train, test)
    assert 0 < ho.customers < 1000
    scorers = {
        ev.MODEL: ev.fit_scorer(train, rec.KNNParams()),
        ev.POPULAR: ev.popular_scorer(train.matrix),
    }
    scores, lifts, message = ev.score_methods(train, ho, scorers, min_customers=1000)
    assert lifts == {} and f"only {ho.customers} customers evaluated (minimum 1000)" in message
    assert scores[ev.POPULAR].ndcg.low <= scores[ev.POPULAR].ndcg.value
    scores, lifts, message = ev.score_methods(train, ho, scorers, min_customers=1)
    assert message == "" and set(lifts) == {ev.POPULAR}
    lift = lifts[ev.POPULAR]
    assert lift.value == pytest.approx(scores[ev.MODEL].ndcg.value / scores[ev.POPULAR].ndcg.value)
    assert lift.low <= lift.value <= lift.high
    policy = PromotionPolicy(min_customers=1000)
    assert not policy.allows({"ndcg@10": 0.9, "eval_customers": 999}, None)
    assert "only 999 customers evaluated" in (policy.too_few({"eval_customers": 999}) or "")
    assert policy.allows({"ndcg@10": 0.9, "eval_customers": 1000}, None)


def test_bootstrap_intervals_bracket_the_mean_and_are_paired() -> None:
    from jobs.domain import reco_eval as ev

    rng = np.random.default_rng(3)
    a = rng.random(500)
    per_user = {"model": {"ndcg@10": a}, "same": {"ndcg@10": a.copy()}}
    intervals, draws = ev.bootstrap(per_user, n=200)
    m = intervals["model"]["ndcg@10"]
    assert m.low < m.value < m.high and m.value == pytest.approx(a.mean())
    assert m.high - m.low < 0.1
    np.testing.assert_array_equal(draws[:, 0], draws[:, 1])  # same resamples for both


def test_search_stops_at_its_budget_and_keeps_the_best() -> None:
    from jobs.domain import reco_eval as ev

    table = generated_orders(days=10)
    kept, val = ev.customer_split(table, ev.SplitRule())
    train, held = rec.build_interactions(kept), rec.build_interactions(val)
    space = ev.candidates(train.matrix.shape[1])
    chosen, tuning = ev.tune(train, held, space, budget_seconds=0.0, orders=kept)
    assert tuning.trials == 1 and chosen == space[0]
    chosen, tuning = ev.tune(train, held, space[:6], budget_seconds=60.0, orders=kept)
    assert tuning.trials == 6
    assert max(tuning.validation_ndcg.values()) == tuning.validation_ndcg[ev.kind_of(chosen)]


def test_every_family_exports_factors_that_rank_like_the_model() -> None:
    from jobs.domain import reco_eval as ev

    table = generated_orders(days=7)
    inter = rec.build_interactions(table)
    rows = np.arange(20)
    for params in (rec.KNNParams(), rec.EASEParams(l2=100.0, half_life=5.0), rec.ALSParams()):
        users, items = ev.export(inter, params, table)
        assert users.shape[0] == len(inter.customer_ids) and items.shape[0] == inter.matrix.shape[1]
        assert users.dtype == items.dtype == np.float32 and users.shape[1] == items.shape[1]
        if isinstance(params, rec.ALSParams):
            continue  # ALS is its factors
        exact = ev.fit_scorer(inter, params, table)(rows)
        served = users[rows] @ items.T
        # the catalogue is smaller than the export rank: the factors are exact
        np.testing.assert_allclose(served, exact, atol=1e-3)
