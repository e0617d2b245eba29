"""Query by committee: vote entropy and consensus KL against their definitions, and the bagged committee."""

import math

import numpy as np
import pytest

from sieve.core.committee import committee_proba, consensus_kl, vote_entropy

A, B, C = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]


def test_vote_entropy_counts_each_members_top_class():
    # Three members (rows of the outer list) vote on three items.
    committee = [
        [[0.6, 0.3, 0.1], A, A],
        [[0.7, 0.2, 0.1], A, B],
        [[0.2, 0.5, 0.3], A, C],
    ]
    # Item 0: two votes for class 0, one for class 1; item 1: unanimous; item 2: one vote each.
    expected = [-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), 0.0, math.log(3)]
    np.testing.assert_allclose(vote_entropy(committee), expected)


def test_vote_entropy_ignores_how_sure_the_members_are():
    sure, unsure = [[A, A], [B, B]], [[[0.4, 0.35, 0.25]] * 2, [[0.3, 0.4, 0.3]] * 2]
    np.testing.assert_allclose(vote_entropy(sure), vote_entropy(unsure))


def test_consensus_kl_is_the_mean_divergence_from_the_average_member():
    committee = [[[0.8, 0.2], [1.0, 0.0], [0.5, 0.5]], [[0.4, 0.6], [0.0, 1.0], [0.5, 0.5]]]
    # Consensus of item 0 is (0.6, 0.4); of item 1, (0.5, 0.5); item 2: members agree.
    kl_1 = 0.8 * math.log(0.8 / 0.6) + 0.2 * math.log(0.2 / 0.4)
    kl_2 = 0.4 * math.log(0.4 / 0.6) + 0.6 * math.log(0.6 / 0.4)
    expected = [(kl_1 + kl_2) / 2, math.log(2), 0.0]
    np.testing.assert_allclose(consensus_kl(committee), expected, atol=1e-12)


@pytest.mark.parametrize("bad", [[[0.5, 0.5]], [[[0.5, 0.6]]], [[[-0.1, 1.1]]], np.zeros((0, 2, 2))])
def test_committee_scores_refuse_malformed_votes(bad):
    with pytest.raises(ValueError):
        vote_entropy(bad)
    with pytest.raises(ValueError):
        consensus_kl(bad)


def _pool(n_labeled_per_class=(5, 5, 1), seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    labels = np.repeat(np.array(["a", "b", "c"]), n_labeled_per_class)
    labeled_x = centers[np.searchsorted(["a", "b", "c"], labels)] + rng.normal(scale=0.5, size=(len(labels), 2))
    pool_x = rng.normal(scale=2.0, size=(40, 2)) + 1.0
    features = np.vstack([labeled_x, pool_x])
    return features, np.arange(len(labels)), labels, np.arange(len(labels), len(features))


def test_members_that_missed_a_class_give_it_probability_zero_in_its_own_column():
    features, labeled, labels, rows = _pool()  # one labeled "c" of eleven: many resamples miss it
    members = committee_proba(features, labeled, labels, rows, {}, np.random.default_rng(0), size=20)
    assert members.shape == (20, len(rows), 3)
    np.testing.assert_allclose(members.sum(axis=2), 1.0)
    missed_c = (members[:, :, 2] == 0).all(axis=1)
    assert missed_c.any() and not missed_c.all()
    # Where "c" was seen, its column holds the probability of "c": highest near c's center.
    saw_c = np.flatnonzero(~missed_c)[0]
    near_c = committee_proba(
        np.vstack([features, [[0.0, 4.0]]]),
        labeled,
        labels,
        np.array([len(features)]),
        {},
        np.random.default_rng(0),
        size=20,
    )
    assert near_c[saw_c, 0].argmax() == 2


@pytest.mark.parametrize("dtype", [str, object, "int"])
def test_a_resample_of_one_class_votes_for_it_with_certainty(dtype):
    features, labeled, labels, rows = _pool((1, 1, 0))  # resamples of two rows: half hold one class
    labels = np.array([0, 1]) if dtype == "int" else labels.astype(dtype)
    members = committee_proba(features, labeled, labels, rows, {}, np.random.default_rng(0), size=20)
    one_hot = np.isin(members, (0.0, 1.0)).all(axis=(1, 2))
    assert one_hot.any() and not one_hot.all()
    for m in np.flatnonzero(one_hot):
        assert (members[m] == members[m, 0]).all()  # the same single class for every row


def test_the_committee_is_seeded():
    features, labeled, labels, rows = _pool()
    one = committee_proba(features, labeled, labels, rows, {}, np.random.default_rng(3))
    two = committee_proba(features, labeled, labels, rows, {}, np.random.default_rng(3))
    np.testing.assert_array_equal(one, two)


def test_a_committee_needs_members_and_labels():
    features, labeled, labels, rows = _pool()
    with pytest.raises(ValueError):
        committee_proba(features, labeled, labels, rows, {}, np.random.default_rng(0), size=0)
    with pytest.raises(ValueError):
        committee_proba(features, labeled[:0], labels[:0], rows, {}, np.random.default_rng(0))
