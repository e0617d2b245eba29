"""BADGE: the gradient embedding is the loss gradient of a softmax last layer; seeding is k-means++."""

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from sieve.core.badge import badge, gradient_embedding
from sieve.core.diversity import d2_sampling, euclidean_sq_dist_to


def cross_entropy(weights, x_with_bias, label):
    return -log_softmax(weights @ x_with_bias)[label]


def test_embedding_is_the_numerical_gradient_of_the_loss_at_the_predicted_label():
    rng = np.random.default_rng(0)
    n_classes, dim = 4, 3
    weights = rng.normal(size=(n_classes, dim + 1))  # the last column multiplies the bias input 1
    for x in rng.normal(size=(5, dim)):
        xb = np.append(x, 1.0)
        p = softmax(weights @ xb)
        label = int(p.argmax())  # BADGE's pseudo-label: the model's own guess
        numerical = np.zeros_like(weights)
        h = 1e-6
        for c in range(n_classes):
            for j in range(dim + 1):
                step = np.zeros_like(weights)
                step[c, j] = h
                numerical[c, j] = (
                    cross_entropy(weights + step, xb, label) - cross_entropy(weights - step, xb, label)
                ) / (2 * h)
        np.testing.assert_allclose(gradient_embedding(p[None], x[None])[0], numerical.ravel(), atol=1e-6)


def test_embedding_by_hand():
    # p = (0.7, 0.3), guess class 0: residual (-0.3, 0.3); input with bias (2, 1).
    np.testing.assert_allclose(gradient_embedding([[0.7, 0.3]], [[2.0]]), [[-0.6, -0.3, 0.6, 0.3]])


def _pool(seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(40, 3))
    proba = softmax(rng.normal(size=(40, 4)) * 2, axis=1)
    return proba, features


def test_first_pick_has_the_largest_gradient_norm():
    proba, features = _pool()
    norms = np.linalg.norm(gradient_embedding(proba, features), axis=1)
    assert badge(proba, features, 1, np.random.default_rng(0))[0] == norms.argmax()


def test_batch_is_kmeans_plus_plus_on_the_explicit_embeddings():
    proba, features = _pool()
    embedding = gradient_embedding(proba, features)
    first = int(np.linalg.norm(embedding, axis=1).argmax())
    expected = d2_sampling(euclidean_sq_dist_to(embedding), 40, 10, np.random.default_rng(5), first=first)
    assert badge(proba, features, 10, np.random.default_rng(5)).tolist() == expected.tolist()


def test_certain_rows_have_zero_embedding_and_k_beyond_the_pool_takes_every_row():
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # every embedding is 0
    picked = badge(proba, np.ones((3, 2)), 5, np.random.default_rng(0))
    assert sorted(picked.tolist()) == [0, 1, 2]


def test_mismatched_features_are_a_value_error():
    with pytest.raises(ValueError):
        badge(np.full((3, 2), 0.5), np.ones((2, 2)), 1, np.random.default_rng(0))
