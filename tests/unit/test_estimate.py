"""Interval estimates against their textbook definitions, and their coverage measured by simulation."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.metrics import f1_score

from sieve.core import estimate


def _wilson(correct: int, n: int, level: float) -> tuple[float, float]:
    """Wilson (1927): the p whose normal test at `level` does not reject `correct` successes in `n`."""
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("correct", "n", "level"), [(8, 10, 0.95), (0, 12, 0.9), (97, 100, 0.9), (150, 300, 0.8)])
def test_the_accuracy_interval_is_wilsons(correct, n, level):
    result = estimate.accuracy(correct, n, "eval", level)
    assert result.value == correct / n and result.n == n and result.level == level and result.source == "eval"
    assert (result.low, result.high) == pytest.approx(_wilson(correct, n, level), abs=1e-9)


def test_a_known_wilson_interval():
    # 8 of 10 at 95 %: (0.490, 0.943), as tabulated by Brown, Cai & DasGupta (2001) and in most textbooks.
    result = estimate.accuracy(8, 10, "eval", 0.95)
    assert (round(result.low, 3), round(result.high, 3)) == (0.490, 0.943)


@pytest.mark.parametrize("bad", [(0, 0), (5, 4), (-1, 3)])
def test_an_impossible_count_is_refused(bad):
    with pytest.raises(ValueError):
        estimate.accuracy(*bad, "eval")


def test_the_90_percent_accuracy_interval_covers_the_truth_about_90_percent_of_the_time():
    # Exact coverage: the chance, over the binomial draw of the sample, that the interval holds p.
    coverages = []
    for p in (0.6, 0.8, 0.9, 0.97):
        for n in (30, 100, 300):
            held = [estimate.accuracy(k, n, "audit") for k in range(n + 1)]
            coverages.append(sum(binom.pmf(k, n, p) for k, e in enumerate(held) if e.low <= p <= e.high))
    # Wilson's coverage oscillates around its nominal level as p and n move (Brown, Cai & DasGupta 2001).
    assert min(coverages) >= 0.86, coverages
    assert np.mean(coverages) == pytest.approx(0.90, abs=0.01)


def test_macro_f1_is_scikit_learns_over_every_class_seen():
    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "c", "d"], size=150)
    guess = np.where(rng.random(150) < 0.7, truth, rng.choice(["a", "b", "c", "e"], size=150))
    result = estimate.macro_f1(truth, guess, "eval", np.random.default_rng(0))
    every = np.union1d(truth, guess)
    expected = f1_score(truth, guess, labels=every, average="macro", zero_division=0)
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.low <= result.value <= result.high and result.n == 150 and result.metric == "macro_f1"


def test_the_macro_f1_bootstrap_is_seeded():
    truth, guess = np.array([0, 1, 1, 2, 0, 2, 1] * 5), np.array([0, 1, 2, 2, 0, 1, 1] * 5)
    first = estimate.macro_f1(truth, guess, "eval", np.random.default_rng(11))
    second = estimate.macro_f1(truth, guess, "eval", np.random.default_rng(11))
    assert first == second


def test_the_90_percent_macro_f1_interval_covers_the_population_value_most_of_the_time():
    rng = np.random.default_rng(5)
    population_truth = rng.choice(3, size=20_000, p=[0.5, 0.3, 0.2])
    correct = rng.random(20_000) < np.array([0.9, 0.7, 0.6])[population_truth]
    population_guess = np.where(correct, population_truth, (population_truth + 1) % 3)
    truth_value = f1_score(population_truth, population_guess, average="macro")
    hits = []
    for _ in range(120):
        sample = rng.choice(20_000, size=200, replace=False)
        result = estimate.macro_f1(population_truth[sample], population_guess[sample], "audit", rng)
        hits.append(result.low <= truth_value <= result.high)
    assert np.mean(hits) >= 0.83  # 120 draws: the measured share is 0.90 give or take 0.03


def test_the_estimate_of_a_models_metrics_is_its_accuracy_with_wilsons_interval_and_cv_is_marked_biased():
    on_eval = estimate.of_metrics({"source": "eval", "n": 40, "accuracy": 0.85, "macro_f1": 0.8})
    assert on_eval["metric"] == "accuracy" and on_eval["value"] == 34 / 40 and on_eval["n"] == 40
    assert (on_eval["low"], on_eval["high"]) == pytest.approx(_wilson(34, 40, 0.9), abs=1e-9)
    assert on_eval["level"] == 0.9 and on_eval["source"] == "eval" and on_eval["biased"] is False
    crossed = estimate.of_metrics({"source": "cross_validation", "n": 60, "accuracy": 0.5})
    assert crossed["source"] == "cross_validation" and crossed["biased"] is True
    assert estimate.of_metrics(None) is None
