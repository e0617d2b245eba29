"""The default strategy against the definition of uncertainty herding, on cases worked out by hand."""

import numpy as np
import pytest

from sieve.core import auto
from sieve.core.auto import bandwidth, greedy_coverage, uncertainty_herding
from sieve.core.selection import Candidates, select

# Candidates 0 and 1 cover each other's rows by half; candidate 2 covers only its own row.
REACH = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_greedy_coverage_by_hand():
    # Gains 1.5, 1.5, 0.4: a tie goes to column 0. Cover becomes (1, 0.5, 0): column 1 gains 0.5, column 2 0.4.
    assert greedy_coverage(REACH, np.array([1.0, 1.0, 0.4]), np.zeros(3), 3).tolist() == [0, 1, 2]
    # A heavier lone row (0.6) now beats what column 1 still adds (0.5).
    assert greedy_coverage(REACH, np.array([1.0, 1.0, 0.6]), np.zeros(3), 3).tolist() == [0, 2, 1]
    # What the labels already cover counts: with row 0 covered, column 1 gains 1.0 - 0 + 0 = 1.0 > 0.5.
    assert greedy_coverage(REACH, np.array([1.0, 1.0, 0.6]), np.array([1.0, 0.0, 0.0]), 1).tolist() == [1]


def _objective(reach, weights, cover, chosen):
    """Σ_i w_i · max(cover_i, max_{j in chosen} reach_ji), written out."""
    best = np.max(reach[chosen], axis=0) if chosen else np.zeros(len(cover))
    return float(weights @ np.maximum(cover, best))


def test_lazy_greedy_picks_what_plain_greedy_on_the_objective_picks():
    rng = np.random.default_rng(3)
    # 50 candidates reaching 80 rows, not symmetric: candidates and rows need not be the same items.
    reach = rng.random((50, 80)) ** 4
    weights, cover = rng.random(80), rng.random(80) * 0.3
    chosen = []
    for _ in range(15):
        values = [-np.inf if j in chosen else _objective(reach, weights, cover, chosen + [j]) for j in range(50)]
        chosen.append(int(np.argmax(values)))
    assert greedy_coverage(reach, weights, cover, 15).tolist() == chosen


def test_bandwidth_is_the_median_squared_distance_to_the_nearest_label():
    # Unlabeled rows at squared distances 0.01, 1.0, 1.21 and 9.0 from their nearest label.
    assert bandwidth(np.array([0.01, 1.0, 1.21, 9.0])) == pytest.approx((1.0 + 1.21) / 2)
    assert bandwidth(np.zeros(3)) == 1.0  # every row is a copy of a labeled one: any width will do


def test_uncertainty_herding_is_greedy_uncertainty_coverage():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    proba = rng.dirichlet(np.ones(3), size=60)
    labeled, rows = np.arange(6), np.arange(6, 60)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    sigma2 = np.median(d2[np.ix_(rows, labeled)].min(axis=1))
    kernel = np.exp(-d2[np.ix_(rows, rows)] / sigma2)
    cover = np.exp(-d2[np.ix_(rows, labeled)] / sigma2).max(axis=1)
    top2 = np.sort(proba[rows], axis=1)[:, -2:]
    weights = (1 - (top2[:, 1] - top2[:, 0])) ** auto.SHARPNESS
    chosen = []
    for _ in range(8):
        values = [
            -np.inf if j in chosen else _objective(kernel, weights, cover, chosen + [j]) for j in range(len(rows))
        ]
        chosen.append(int(np.argmax(values)))
    picked = uncertainty_herding(proba, X, rows, labeled, 8, np.random.default_rng(0))
    assert picked.tolist() == rows[chosen].tolist()


def test_with_few_labels_it_covers_the_dense_region_first():
    # A tight cluster of 20 rows around (5, 5), 3 stragglers, one label far away; the model equally unsure everywhere.
    rng = np.random.default_rng(1)
    X = np.vstack([[[0.0, 0.0]], rng.normal([5, 5], 0.2, size=(20, 2)), [[5, -5], [-5, 5], [-5, -5]]])
    proba = np.full((len(X), 2), 0.5)
    first = uncertainty_herding(proba, X, np.arange(1, len(X)), np.array([0]), 1, np.random.default_rng(0))[0]
    assert 1 <= first <= 20


def test_with_many_labels_it_asks_for_the_least_sure_row():
    # Labels sit next to every unlabeled row, so the kernel is narrow and each row covers only itself.
    X = np.repeat(np.arange(6.0)[:, None] * 10, 2, axis=0)
    X[1::2] += 0.1
    labeled, rows = np.arange(0, 12, 2), np.arange(1, 12, 2)
    proba = np.full((12, 2), [0.99, 0.01])
    proba[rows] = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.52, 0.48], [0.7, 0.3], [0.95, 0.05]]
    batch = uncertainty_herding(proba, X, rows, labeled, 6, np.random.default_rng(0))
    assert batch.tolist() == [7, 3, 9, 5, 1, 11]  # by margin uncertainty, highest first


def test_a_longer_batch_starts_with_the_shorter_one_and_large_pools_are_sampled():
    rng = np.random.default_rng(2)
    X, p = rng.normal(size=(5000, 4)), rng.dirichlet(np.ones(3), size=5000)
    rows, labeled = np.arange(10, 5000), np.arange(10)
    short = uncertainty_herding(p, X, rows, labeled, 10, np.random.default_rng(7))
    long = uncertainty_herding(p, X, rows, labeled, 40, np.random.default_rng(7))
    assert long[:10].tolist() == short.tolist()
    assert len(set(long.tolist())) == 40 and not set(long.tolist()) & set(labeled.tolist())


def test_select_serves_it_as_auto():
    rng = np.random.default_rng(4)
    X, p = rng.normal(size=(50, 3)), rng.dirichlet(np.ones(2), size=50)
    candidates = Candidates(
        features=X,
        unlabeled=np.arange(4, 50),
        labeled=np.arange(4),
        labels=np.array(["a", "b", "a", "b"]),
        proba=p,
        model=None,
        spec={},
        rng=np.random.default_rng(0),
    )
    expected = uncertainty_herding(p, X, np.arange(4, 50), np.arange(4), 5, np.random.default_rng(0))
    assert select("auto", candidates, 5).tolist() == expected.tolist()
