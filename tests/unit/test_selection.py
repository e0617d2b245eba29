"""select() picks the top of each strategy's scores and a seeded random batch in a cold start."""
import numpy as np
import pytest

from sieve.core.selection import Candidates, select


def candidates(proba=None, unlabeled=(0, 2, 3, 4), seed=0):
    return Candidates(features=np.zeros((5, 2)), unlabeled=np.array(unlabeled), labeled=np.array([1]),
                      labels=np.array(["a"]), proba=None if proba is None else np.asarray(proba),
                      model=None, spec={}, rng=np.random.default_rng(seed))


PROBA = [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01], [0.7, 0.3]]


def test_least_confidence_batch_is_the_least_sure_unlabeled_rows_first():
    # Row 1 is the least sure of all but it is labeled, so it never comes back.
    assert select("least_confidence", candidates(PROBA), 3).tolist() == [2, 4, 0]


def test_k_beyond_the_unlabeled_count_returns_every_unlabeled_row():
    assert sorted(select("margin", candidates(PROBA), 50).tolist()) == [0, 2, 3, 4]


def test_cold_start_batch_is_random_but_seeded():
    first = select("margin", candidates(), 2)
    assert first.tolist() == select("margin", candidates(), 2).tolist()
    assert set(first.tolist()) <= {0, 2, 3, 4} and len(first) == 2


@pytest.mark.parametrize("strategy, k", [("nope", 2), ("margin", -1), ("margin", 1.5)])
def test_bad_strategy_or_k_is_a_value_error(strategy, k):
    with pytest.raises(ValueError):
        select(strategy, candidates(PROBA), k)
