"""Diverse mini-batches and cluster-margin on hand-made groups of rows."""

import numpy as np
import pytest

from sieve.core import clustering
from sieve.core.clustering import PREFILTER, cluster_margin, margin_diversity, round_robin


def proba_with_margins(gaps):
    """Two-class probability rows whose gap p1 - p2 is each given value."""
    gaps = np.asarray(gaps, dtype=np.float64)
    return np.column_stack([(1 + gaps) / 2, (1 - gaps) / 2])


def test_round_robin_visits_the_smallest_cluster_first():
    labels = np.array([0, 0, 0, 1, 2, 2])  # sizes: cluster 1 has one item, 2 has two, 0 has three
    order = round_robin(labels, np.random.default_rng(0))
    assert labels[order].tolist() == [1, 2, 0, 2, 0, 0]
    assert sorted(order.tolist()) == list(range(6))


def test_round_robin_is_seeded_within_clusters():
    labels = np.zeros(10, dtype=int)
    one = round_robin(labels, np.random.default_rng(1))
    assert one.tolist() == round_robin(labels, np.random.default_rng(1)).tolist()
    assert sorted(one.tolist()) == list(range(10))


def two_groups():
    """Group A (rows 0-9, gap 0.01) and group B (rows 10-19, gap 0.1) far apart; rows 20-39 are
    nearly certain (gap 0.9) and scattered around both. Row 0 is A's centre, row 10 B's."""
    ring = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1], [1, -1], [-1, 1], [0, 0]], float)
    a = np.vstack([[0.0, 0.0], ring * [1, 1]])
    b = np.vstack([[50.0, 0.0], ring + [50, 0]])
    rest = np.random.default_rng(0).normal(size=(20, 2)) * 2 + np.repeat([[0, 0], [50, 0]], 10, axis=0)
    features = np.vstack([a, b, rest])
    proba = proba_with_margins([0.01] * 10 + [0.1] * 10 + [0.9] * 20)
    return features, proba


def test_margin_diversity_takes_the_centre_of_each_group_of_candidates_most_informative_first():
    features, proba = two_groups()
    assert PREFILTER * 2 == 20  # so the candidates are exactly groups A and B
    picked = margin_diversity(proba, features, np.arange(40), 2, np.random.default_rng(0))
    # Plain margin would take two rows of A; the centres are nearest their centroids (row 9 of A
    # sits on the centre too, and the lower row wins).
    assert picked.tolist() == [0, 10]


def test_margin_diversity_never_returns_a_row_outside_the_given_rows():
    features, proba = two_groups()
    rows = np.arange(5, 40)
    picked = margin_diversity(proba, features, rows, 3, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 3 and set(picked.tolist()) <= set(rows.tolist())


def three_blobs_of_candidates():
    """30 candidates (gap 0.01): 20 in blob 0 (rows 0-19), 7 in blob 1 (20-26), 3 in blob 2 (27-29);
    270 certain rows (gap 0.9) spread evenly over the three blobs."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    blob = np.r_[np.repeat([0, 1, 2], [20, 7, 3]), np.repeat([0, 1, 2], 90)]
    features = centers[blob] + rng.normal(scale=0.5, size=(len(blob), 2))
    proba = proba_with_margins([0.01] * 30 + [0.9] * 270)
    return features, proba, blob


def test_cluster_margin_takes_one_row_per_cluster_smallest_cluster_first():
    features, proba, blob = three_blobs_of_candidates()
    picked = cluster_margin(proba, features, np.arange(300), 3, np.random.default_rng(0))
    assert blob[picked].tolist() == [2, 1, 0]
    assert (picked < 30).all()  # only low-margin candidates


def test_cluster_margin_is_seeded():
    features, proba, _ = three_blobs_of_candidates()
    one = cluster_margin(proba, features, np.arange(300), 3, np.random.default_rng(4))
    assert one.tolist() == cluster_margin(proba, features, np.arange(300), 3, np.random.default_rng(4)).tolist()


def test_cluster_margin_joins_candidates_to_the_clusters_of_a_sample_of_the_pool(monkeypatch):
    features, proba, blob = three_blobs_of_candidates()
    monkeypatch.setattr(clustering, "CLUSTER_SAMPLE", 60)  # a fifth of the pool is clustered
    picked = cluster_margin(proba, features, np.arange(300), 3, np.random.default_rng(0))
    assert blob[picked].tolist() == [2, 1, 0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_margin_diversity_fills_the_batch_when_duplicates_leave_clusters_empty():
    features = np.zeros((30, 2))  # one point 30 times: k-means finds a single non-empty cluster
    proba = proba_with_margins(np.linspace(0.0, 0.5, 30))
    picked = margin_diversity(proba, features, np.arange(30), 3, np.random.default_rng(0))
    assert picked.tolist() == [0, 1, 2]  # the three smallest margins
