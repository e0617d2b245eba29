"""Scoring in shards and merging gives the unsharded refresh's probabilities and orders, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from sieve.core.fitting import SCORING_ROWS, fit
from sieve.core.registry import REGISTRY
from sieve.core.sharding import merge, score_shard, scored_in_shards, shard_bounds
from sieve.core.training import ALWAYS_RANKED, RankRequest, rank_pool

N_ROWS = 2 * SCORING_ROWS + 5_000


def _pool(seed: int = 3):
    rng = np.random.default_rng(seed)
    # Few distinct rows, repeated all over the pool: equal scores in every shard, so ties cross shards.
    distinct = rng.normal(size=(60, 6)).astype(np.float32)
    features = distinct[rng.integers(0, len(distinct), N_ROWS)]
    labeled = np.sort(rng.choice(N_ROWS, 200, replace=False))
    labels = [("a", "b", "c")[int(features[r, 0] > 0) + int(features[r, 1] > 0.5)] for r in labeled]
    eval_rows = np.setdiff1d(np.arange(0, N_ROWS, 997), labeled)
    return features, labeled, labels, eval_rows


def _sharded(request: RankRequest, model, shard_rows: int):
    strategies = scored_in_shards([*request.strategies])
    excluded = np.unique(np.concatenate([request.labeled_rows, request.eval_rows]))
    shards = [
        score_shard(model, request.features[first:stop], first, excluded, strategies)
        for first, stop in shard_bounds(request.features, shard_rows)
    ]
    proba, ranked = merge(shards, strategies)
    return rank_pool(RankRequest(**{**request.__dict__, "model": model, "proba": proba, "ranked": ranked}))


@pytest.mark.parametrize(
    "spec", [{"type": "logistic_regression"}, {"type": "random_forest", "params": {"n_estimators": 5}}]
)
def test_a_sharded_refresh_ranks_exactly_as_an_unsharded_one(spec):
    features, labeled, labels, eval_rows = _pool()
    strategies = (*ALWAYS_RANKED, "ratio_of_confidence", "density_weighted", "auto")
    request = RankRequest(features, labeled, labels, spec, 5, 9, strategies=strategies, eval_rows=eval_rows)
    model = fit(features, labeled, labels, spec, random_state=5)
    whole = rank_pool(RankRequest(**{**request.__dict__, "model": model}))
    sharded = _sharded(request, model, shard_rows=SCORING_ROWS)
    assert whole.proba.tobytes() == sharded.proba.tobytes()
    assert list(whole.orders) == list(sharded.orders)
    for name, (order, scores) in whole.orders.items():
        assert order.tobytes() == sharded.orders[name][0].tobytes(), name
        assert scores.tobytes() == sharded.orders[name][1].tobytes(), name
    # The pool really has ties across shards, and they went to the earlier row.
    order, scores = whole.orders["margin"]
    tied = np.flatnonzero(np.diff(scores) == 0)
    assert len(tied) > 1000 and (order[tied] < order[tied + 1]).all()


def test_shards_start_on_scoring_blocks():
    features = np.zeros((10 * SCORING_ROWS + 7, 3), dtype=np.float32)
    bounds = shard_bounds(features, SCORING_ROWS + 1)  # rounded up to two blocks
    assert bounds[0] == (0, 2 * SCORING_ROWS) and bounds[-1][1] == features.shape[0]
    assert all(first % SCORING_ROWS == 0 for first, _ in bounds)
    assert shard_bounds(features, features.shape[0]) == [(0, features.shape[0])]
    text_rows = sparse.csr_matrix((5_000, 100_000), dtype=np.float32)  # blocks of 41 rows: densified ones are bounded
    assert all(first % 41 == 0 for first, _ in shard_bounds(text_rows, 1000))


def test_only_strategies_that_score_a_row_from_its_own_probabilities_are_sharded():
    sharded = scored_in_shards(REGISTRY.names)
    assert set(sharded) == {"least_confidence", "margin", "entropy", "ratio_of_confidence"}
    assert all(REGISTRY[name].proba_score is not None for name in sharded)


def test_a_merge_refuses_shards_that_leave_a_gap():
    features, labeled, labels, _ = _pool()
    model = fit(features, labeled, labels, {"type": "logistic_regression"}, random_state=1)
    shards = [
        score_shard(model, features[first:stop], first, labeled, ("margin",))
        for first, stop in shard_bounds(features, SCORING_ROWS)
    ]
    with pytest.raises(ValueError, match="without gaps"):
        merge([shards[0], shards[2]], ("margin",))
