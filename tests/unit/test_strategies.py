"""Query strategies checked against their textbook definitions on hand-made probabilities."""

import math

import numpy as np
import pytest

from sieve.core.registry import scores
from sieve.core.strategies import (
    entropy,
    least_confidence,
    margin,
    random_scores,
    ranking,
    ratio_of_confidence,
    top_k,
    validate_proba,
)
from sieve.core.training import ALWAYS_RANKED

THREE_ROWS = [
    [0.5, 0.3, 0.2],
    [0.8, 0.1, 0.1],
    [0.4, 0.4, 0.2],
]


def test_strategy_names_and_default_are_published():
    assert ALWAYS_RANKED == ("least_confidence", "margin", "entropy", "random")


def test_least_confidence_is_one_minus_top_probability():
    expected = [1 - 0.5, 1 - 0.8, 1 - 0.4]
    np.testing.assert_allclose(least_confidence(THREE_ROWS), expected)


def test_margin_is_one_minus_gap_between_two_best_classes():
    expected = [1 - (0.5 - 0.3), 1 - (0.8 - 0.1), 1 - (0.4 - 0.4)]
    np.testing.assert_allclose(margin(THREE_ROWS), expected)


def test_margin_finds_top_two_regardless_of_column_order():
    np.testing.assert_allclose(margin([[0.1, 0.2, 0.6, 0.1]]), [1 - (0.6 - 0.2)])


def test_margin_ranks_smallest_gap_first():
    order = ranking(margin(THREE_ROWS))
    assert order.tolist() == [2, 0, 1]


def test_ratio_of_confidence_is_second_probability_over_top_probability():
    # Munro (2021), ch. 3: P(y*_2 | x) / P(y*_1 | x), 1 when the two best classes tie, 0 when one is sure.
    np.testing.assert_allclose(ratio_of_confidence(THREE_ROWS), [0.3 / 0.5, 0.1 / 0.8, 0.4 / 0.4])
    np.testing.assert_allclose(ratio_of_confidence([[0.1, 0.2, 0.6, 0.1]]), [0.2 / 0.6])
    np.testing.assert_allclose(ratio_of_confidence([[0.9, 0.1], [0.35, 0.65]]), [0.1 / 0.9, 0.35 / 0.65])
    assert ratio_of_confidence(THREE_ROWS).dtype == np.float64


def test_ratio_of_confidence_orders_rows_differently_from_margin():
    # A: gap 0.2, ratio 2/3. B: gap 0.15, ratio 1/2. Margin asks for B first, the ratio for A.
    a = [0.6, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0]
    b = [0.3, 0.15, 0.11, 0.11, 0.11, 0.11, 0.11]
    assert ranking(margin([a, b])).tolist() == [1, 0]
    assert ranking(ratio_of_confidence([a, b])).tolist() == [0, 1]
    np.testing.assert_allclose(ratio_of_confidence([a, b]), [0.4 / 0.6, 0.15 / 0.3])


def test_ratio_of_confidence_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2"):
        ratio_of_confidence([[1.0]])


def test_entropy_is_shannon_entropy_in_nats():
    expected = [
        -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2)),
        -(0.8 * math.log(0.8) + 2 * 0.1 * math.log(0.1)),
        -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)),
    ]
    np.testing.assert_allclose(entropy(THREE_ROWS), expected)


def test_entropy_treats_zero_probability_as_contributing_nothing():
    np.testing.assert_allclose(entropy([[0.5, 0.5, 0.0]]), [math.log(2)])


def test_two_class_rows_match_hand_computation():
    proba = [[0.9, 0.1], [0.35, 0.65]]
    np.testing.assert_allclose(least_confidence(proba), [0.1, 0.35])
    np.testing.assert_allclose(margin(proba), [1 - 0.8, 1 - 0.3])
    np.testing.assert_allclose(
        entropy(proba),
        [-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), -(0.35 * math.log(0.35) + 0.65 * math.log(0.65))],
    )


@pytest.mark.parametrize("n_classes", [2, 3, 4, 10])
def test_uniform_rows_are_maximally_informative_for_every_strategy(n_classes):
    uniform = np.full((1, n_classes), 1.0 / n_classes)
    np.testing.assert_allclose(least_confidence(uniform), [1 - 1 / n_classes])
    np.testing.assert_allclose(margin(uniform), [1.0])
    np.testing.assert_allclose(entropy(uniform), [math.log(n_classes)])
    np.testing.assert_allclose(ratio_of_confidence(uniform), [1.0])


def test_one_hot_rows_score_zero_for_every_strategy():
    one_hot = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    for name in ("least_confidence", "margin", "entropy", "ratio_of_confidence"):
        assert scores(name, one_hot).tolist() == [0.0, 0.0]


def test_scores_are_float64_vectors():
    for name in ("least_confidence", "margin", "entropy", "ratio_of_confidence"):
        out = scores(name, np.array(THREE_ROWS, dtype=np.float32))
        assert out.dtype == np.float64 and out.shape == (3,)


def test_single_class_proba_is_allowed_except_for_margin():
    np.testing.assert_allclose(least_confidence([[1.0], [1.0]]), [0.0, 0.0])
    np.testing.assert_allclose(entropy([[1.0]]), [0.0])
    with pytest.raises(ValueError, match="at least 2"):
        margin([[1.0]])


def test_empty_pool_gives_empty_scores():
    empty = np.zeros((0, 3))
    for name in ("least_confidence", "margin", "entropy", "ratio_of_confidence"):
        assert scores(name, empty).shape == (0,)
    assert ranking([]).tolist() == []
    assert top_k([], 3).tolist() == []


def test_float32_rows_get_a_looser_sum_tolerance():
    rows = np.array([[0.50005, 0.5]], dtype=np.float32)
    validate_proba(rows)
    with pytest.raises(ValueError, match="sum to 1"):
        validate_proba(rows.astype(np.float64))


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0.5, 0.5], "2-D"),
        ([[[0.5, 0.5]]], "2-D"),
        ([[0.5, float("nan")]], "finite"),
        ([[0.5, float("inf")]], "finite"),
        ([[0.6, 0.3]], "sum to 1"),
        ([[1.2, -0.2]], "negative"),
        ([["a", "b"]], "numeric"),
        (np.zeros((2, 0)), "class column"),
    ],
)
def test_bad_probabilities_raise_value_error(bad, message):
    for name in ("least_confidence", "margin", "entropy", "ratio_of_confidence"):
        with pytest.raises(ValueError, match=message):
            scores(name, bad)


def test_unknown_strategy_raises_naming_the_valid_ones():
    with pytest.raises(ValueError, match="least_confidence, margin, entropy, random"):
        scores("most_confused", THREE_ROWS)


def test_ranking_puts_most_informative_first():
    assert ranking([0.1, 0.9, 0.5]).tolist() == [1, 2, 0]
    assert ranking([0.1, 0.9, 0.5]).dtype == np.int64


def test_equal_scores_keep_index_order_in_ranking_and_top_k():
    s = [0.2, 0.7, 0.2, 0.7, 0.7, 0.0]
    assert ranking(s).tolist() == [1, 3, 4, 0, 2, 5]
    assert top_k(s, 2).tolist() == [1, 3]
    assert top_k(s, 4).tolist() == [1, 3, 4, 0]


def test_ranking_rejects_nan_and_non_vectors():
    with pytest.raises(ValueError, match="NaN"):
        ranking([0.1, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        top_k([0.1, float("nan")], 1)
    with pytest.raises(ValueError, match="1-D"):
        ranking([[0.1, 0.2]])


def test_top_k_rejects_negative_or_non_integer_k():
    with pytest.raises(ValueError, match="non-negative"):
        top_k([0.1, 0.2], -1)
    with pytest.raises(ValueError, match="integer"):
        top_k([0.1, 0.2], 1.5)


def test_top_k_larger_than_pool_returns_everything_ranked():
    assert top_k([0.3, 0.9], 10).tolist() == [1, 0]
    assert top_k([0.3, 0.9], 0).tolist() == []


@pytest.mark.parametrize("seed", range(40))
def test_top_k_equals_ranking_prefix_on_data_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    # Rounding to one decimal forces many ties, including at the k-th position.
    s = np.round(rng.random(n), 1)
    full = ranking(s)
    for k in {0, 1, n // 3, n // 2, n - 1, n, n + 5, int(rng.integers(0, n + 1))}:
        assert np.array_equal(top_k(s, k), full[:k]), (seed, k)


def test_random_strategy_is_reproducible_with_the_same_seed():
    proba = np.full((50, 2), 0.5)
    a = scores("random", proba, rng=np.random.default_rng(7))
    b = scores("random", proba, rng=np.random.default_rng(7))
    c = scores("random", proba, rng=np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float64 and np.all((a >= 0) & (a < 1))


def test_random_strategy_needs_a_generator():
    with pytest.raises(ValueError, match="rng"):
        scores("random", [[0.5, 0.5]])
    with pytest.raises(ValueError, match="Generator"):
        random_scores(3, rng=42)
    with pytest.raises(ValueError, match="non-negative"):
        random_scores(-1, np.random.default_rng(0))
