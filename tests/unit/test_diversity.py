"""Farthest-first (k-center) and k-means++ seeding, on points whose answer can be worked out by hand."""

import numpy as np
import pytest

from sieve.core.diversity import (
    cold_start,
    d2_sampling,
    euclidean_sq_dist_to,
    farthest_first,
    kcenter,
    sq_dist_to_nearest,
)

LINE = np.arange(11, dtype=np.float64)[:, None]  # the points 0, 1, ..., 10 on a line


def test_kcenter_on_a_line_halves_the_largest_gap_each_time():
    # Labeled: 0. Farthest from it is 10; then 5 (5 from both); then 2, 3, 7 and 8 are all 2 from
    # a center and the lowest row wins.
    rows = np.arange(1, 11)
    assert kcenter(LINE, rows, np.array([0]), 3, np.random.default_rng(0)).tolist() == [10, 5, 2]


def test_farthest_first_with_existing_centers_at_both_ends():
    initial = sq_dist_to_nearest(LINE, LINE[[0, 10]])
    np.testing.assert_allclose(initial, [min(x, 10 - x) ** 2 for x in range(11)])
    assert farthest_first(euclidean_sq_dist_to(LINE), 11, 1, initial=initial).tolist() == [5]


def test_farthest_first_never_repeats_a_point_even_when_all_coincide():
    points = np.zeros((4, 2))
    picked = farthest_first(euclidean_sq_dist_to(points), 4, 10, first=2)
    assert picked[0] == 2 and sorted(picked.tolist()) == [0, 1, 2, 3]


def test_farthest_first_needs_a_start():
    with pytest.raises(ValueError):
        farthest_first(euclidean_sq_dist_to(LINE), 11, 2)


def test_d2_sampling_draws_in_proportion_to_squared_distance():
    # Centers at 0 and 10 already; the points 2 and 5 are 4 and 25 away: 5 is drawn 25 times in 29.
    points = np.array([[2.0], [5.0]])
    initial = sq_dist_to_nearest(points, np.array([[0.0], [10.0]]))
    rng = np.random.default_rng(0)
    draws = [d2_sampling(euclidean_sq_dist_to(points), 2, 1, rng, initial=initial)[0] for _ in range(4000)]
    assert abs(np.mean(np.array(draws) == 1) - 25 / 29) < 0.02


def test_d2_sampling_gives_distinct_points_and_is_seeded():
    points = np.random.default_rng(1).normal(size=(50, 3))
    one = d2_sampling(euclidean_sq_dist_to(points), 50, 50, np.random.default_rng(7))
    assert sorted(one.tolist()) == list(range(50))
    two = d2_sampling(euclidean_sq_dist_to(points), 50, 50, np.random.default_rng(7))
    assert one.tolist() == two.tolist()


def blobs(seed=0):
    """Three tight, far-apart groups of 20 rows: rows 0-19, 20-39, 40-59."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    return np.repeat(centers, 20, axis=0) + rng.normal(scale=0.1, size=(60, 2))


@pytest.mark.parametrize("seed", range(10))
def test_cold_start_batch_covers_every_cluster(seed):
    picked = cold_start(blobs(), np.arange(60), np.array([], dtype=np.int64), 3, np.random.default_rng(seed))
    assert sorted((picked // 20).tolist()) == [0, 1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_cold_start_batch_avoids_the_cluster_already_labeled(seed):
    picked = cold_start(blobs(), np.arange(1, 60), np.array([0]), 2, np.random.default_rng(seed))
    assert sorted((picked // 20).tolist()) == [1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_cold_start_over_a_pool_larger_than_its_sample_still_covers_every_cluster(monkeypatch, seed):
    from sieve.core import diversity

    monkeypatch.setattr(diversity, "COLD_START_SAMPLE", 30)
    points = np.repeat(blobs(seed), 10, axis=0)  # 600 rows, 200 per group; the sample holds 30 of them
    rows = np.arange(3, 600)
    picked = cold_start(points, rows, np.array([0]), 3, np.random.default_rng(seed))
    assert len(set(picked.tolist())) == 3 and np.isin(picked, rows).all()
    # Row 0 (group 0) is labeled: the batch goes to the other two groups first.
    assert sorted((picked[:2] // 200).tolist()) == [1, 2]
    again = cold_start(points, rows, np.array([0]), 3, np.random.default_rng(seed))
    assert again.tolist() == picked.tolist()
