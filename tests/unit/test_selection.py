"""select(): every strategy by name, at most k distinct unlabeled rows, a diverse seeded batch in a cold start."""

import functools

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from sieve.core.registry import scores
from sieve.core.selection import (
    ALL_STRATEGIES,
    BATCH_STRATEGIES,
    DEFAULT_STRATEGY,
    RANKING_STRATEGIES,
    Candidates,
    is_batch,
    ranking_scores,
    select,
)
from sieve.core.strategies import top_k
from sieve.core.training import ALWAYS_RANKED as STRATEGIES


def candidates(proba=None, unlabeled=(0, 2, 3, 4), seed=0):
    return Candidates(
        features=np.zeros((5, 2)),
        unlabeled=np.array(unlabeled),
        labeled=np.array([1]),
        labels=np.array(["a"]),
        proba=None if proba is None else np.asarray(proba),
        model=None,
        spec={},
        rng=np.random.default_rng(seed),
    )


PROBA = [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01], [0.7, 0.3]]


def test_least_confidence_batch_is_the_least_sure_unlabeled_rows_first():
    # Row 1 is the least sure of all but it is labeled, so it never comes back.
    assert select("least_confidence", candidates(PROBA), 3).tolist() == [2, 4, 0]


def test_k_beyond_the_unlabeled_count_returns_every_unlabeled_row():
    assert sorted(select("margin", candidates(PROBA), 50).tolist()) == [0, 2, 3, 4]


def test_cold_start_batch_is_seeded():
    first = select("margin", candidates(), 2)
    assert first.tolist() == select("margin", candidates(), 2).tolist()
    assert set(first.tolist()) <= {0, 2, 3, 4} and len(first) == 2


@pytest.mark.parametrize("strategy, k", [("nope", 2), ("margin", -1), ("margin", 1.5)])
def test_bad_strategy_or_k_is_a_value_error(strategy, k):
    with pytest.raises(ValueError):
        select(strategy, candidates(PROBA), k)


# -- every strategy through the one entry point ---------------------------------------------------


@functools.lru_cache
def _fitted(n, n_labeled, seed):
    X, y = make_classification(
        n_samples=n, n_features=5, n_informative=4, n_redundant=0, n_classes=3, random_state=seed
    )
    labeled = np.arange(0, n, n // n_labeled)[:n_labeled]
    return X, y, labeled, LogisticRegression().fit(X[labeled], y[labeled])


def pool(n=300, n_labeled=30, seed=0, model=True):
    """A 3-class pool with every n_labeled-th row labeled; a fresh generator seeded with `seed`."""
    X, y, labeled, fitted = _fitted(n, n_labeled, seed)
    return Candidates(
        features=X,
        unlabeled=np.setdiff1d(np.arange(n), labeled),
        labeled=labeled,
        labels=y[labeled],
        proba=fitted.predict_proba(X) if model else None,
        model=fitted if model else None,
        spec={},
        rng=np.random.default_rng(seed),
    )


def test_strategy_names_split_into_rankings_and_batches():
    assert ALL_STRATEGIES == RANKING_STRATEGIES + BATCH_STRATEGIES
    assert RANKING_STRATEGIES[:4] == STRATEGIES
    assert set(BATCH_STRATEGIES) == {"kcenter", "margin_diversity", "badge", "cluster_margin", "auto"}
    assert {"qbc_vote_entropy", "qbc_kl", "density_weighted"} <= set(RANKING_STRATEGIES)
    assert len(set(ALL_STRATEGIES)) == len(ALL_STRATEGIES)
    assert DEFAULT_STRATEGY == "auto" and is_batch(DEFAULT_STRATEGY)
    assert [is_batch(s) for s in ALL_STRATEGIES] == [s in BATCH_STRATEGIES for s in ALL_STRATEGIES]
    with pytest.raises(ValueError):
        is_batch("nope")


@pytest.mark.parametrize("model", [True, False], ids=["model", "cold-start"])
@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_every_strategy_gives_at_most_k_distinct_unlabeled_rows_the_same_for_a_seed(strategy, model):
    first = select(strategy, pool(model=model), 12)
    assert first.tolist() == select(strategy, pool(model=model), 12).tolist()
    assert len(first) == 12 and len(set(first.tolist())) == 12
    assert set(first.tolist()) <= set(pool().unlabeled.tolist())


@pytest.mark.parametrize("strategy", ALL_STRATEGIES)
def test_k_beyond_the_pool_returns_every_unlabeled_row_once(strategy):
    candidates = pool(n=60, n_labeled=20)
    picked = select(strategy, candidates, 1000)
    assert sorted(picked.tolist()) == candidates.unlabeled.tolist()
    assert select(strategy, candidates, 0).tolist() == []


@pytest.mark.parametrize("strategy", [s for s in ALL_STRATEGIES if s != "random"])
def test_a_cold_start_batch_spreads_over_the_clusters_for_every_strategy_but_random(strategy):
    rng = np.random.default_rng(0)
    features = np.repeat([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]], 25, axis=0)
    features = features + rng.normal(scale=0.1, size=features.shape)
    candidates = Candidates(
        features=features,
        unlabeled=np.arange(100),
        labeled=np.zeros(0, dtype=np.int64),
        labels=np.zeros(0),
        proba=None,
        model=None,
        spec={},
        rng=np.random.default_rng(1),
    )
    assert candidates.cold_start
    assert sorted((select(strategy, candidates, 4) // 25).tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_first_four_strategies_are_the_top_of_their_scores(strategy):
    candidates = pool()
    rows = candidates.unlabeled
    if strategy == "random":
        expected = rows[top_k(np.random.default_rng(0).random(len(rows)), 10)]
    else:
        expected = rows[top_k(scores(strategy, candidates.proba[rows]), 10)]
    assert select(strategy, candidates, 10).tolist() == expected.tolist()


def test_ranking_strategies_are_the_top_of_their_ranking_scores():
    rows = pool().unlabeled
    for strategy in RANKING_STRATEGIES:
        values = ranking_scores(strategy, pool())
        assert values.shape == rows.shape
        assert select(strategy, pool(), 10).tolist() == rows[top_k(values, 10)].tolist()


def test_batch_strategies_have_no_scores_and_cold_start_has_no_uncertainty():
    with pytest.raises(ValueError):
        ranking_scores("kcenter", pool())
    with pytest.raises(ValueError):
        ranking_scores("margin", pool(model=False))


def test_kcenter_batch_starts_farthest_from_the_labeled_rows():
    candidates = pool()
    rows, labeled = candidates.unlabeled, candidates.labeled
    far = np.linalg.norm(candidates.features[rows][:, None] - candidates.features[labeled][None], axis=2)
    assert select("kcenter", candidates, 1)[0] == rows[far.min(axis=1).argmax()]


def _replace(candidates, **changes):
    return Candidates(**{**candidates.__dict__, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {"unlabeled": np.array([0, 3, 5])},  # row 0 is labeled
        {"unlabeled": np.array([1, 10_000])},  # beyond the features
        {"unlabeled": np.array([[1, 2]])},  # not 1-D
        {"labels": np.array([0, 1])},  # not one label per labeled row
        {"proba": np.full((5, 3), 1 / 3)},  # not one probability row per row
        {"features": np.zeros(300)},  # not 2-D
    ],
)
def test_inconsistent_candidates_are_value_errors(changes):
    with pytest.raises(ValueError):
        select("badge", _replace(pool(), **changes), 3)
