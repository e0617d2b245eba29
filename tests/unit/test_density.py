"""Information density: uncertainty times the mean cosine similarity to the unlabeled pool."""

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from sieve.core.density import information_density, mean_cosine_similarity

# Four rows of one cluster pointing along the first axis, and one outlier along the second.
CLUSTER_AND_OUTLIER = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.5, 0.0], [0.0, 1.0]])


def test_mean_cosine_similarity_by_hand():
    # A cluster row: cos 1 with the four cluster rows (itself included) and 0 with the outlier.
    # The outlier: cos 1 with itself, 0 with the rest.
    np.testing.assert_allclose(
        mean_cosine_similarity(CLUSTER_AND_OUTLIER, CLUSTER_AND_OUTLIER), [0.8, 0.8, 0.8, 0.8, 0.2]
    )


def test_mean_cosine_similarity_equals_the_mean_of_the_similarity_matrix():
    rng = np.random.default_rng(0)
    x, pool = rng.normal(size=(30, 6)), rng.normal(size=(50, 6))
    np.testing.assert_allclose(mean_cosine_similarity(x, pool), cosine_similarity(x, pool).mean(axis=1))


def test_a_zero_row_has_similarity_zero():
    np.testing.assert_allclose(mean_cosine_similarity([[0.0, 0.0]], [[1.0, 0.0]]), [0.0])


def test_density_prefers_a_less_uncertain_row_of_the_cluster_to_the_most_uncertain_outlier():
    uncertainty = np.array([0.6, 0.1, 0.1, 0.1, 0.9])
    similarity = mean_cosine_similarity(CLUSTER_AND_OUTLIER, CLUSTER_AND_OUTLIER)
    scores = information_density(uncertainty, similarity)
    np.testing.assert_allclose(scores, [0.6 * 0.8, 0.08, 0.08, 0.08, 0.9 * 0.2])
    assert scores.argmax() == 0 and uncertainty.argmax() == 4
    np.testing.assert_allclose(information_density(uncertainty, similarity, beta=2.0), uncertainty * similarity**2)
    np.testing.assert_allclose(information_density(uncertainty, similarity, beta=0.0), uncertainty)


def test_a_row_pointing_away_from_the_pool_has_density_zero():
    np.testing.assert_allclose(information_density([0.5, 0.5], [-0.3, 0.3]), [0.0, 0.15])


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf")])
def test_bad_beta_is_a_value_error(beta):
    with pytest.raises(ValueError):
        information_density([0.5], [0.5], beta=beta)


def test_mismatched_lengths_or_empty_pool_are_value_errors():
    with pytest.raises(ValueError):
        information_density([0.5, 0.1], [0.5])
    with pytest.raises(ValueError):
        mean_cosine_similarity([[1.0, 0.0]], np.zeros((0, 2)))
