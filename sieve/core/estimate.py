"""How good a model is, with an interval: estimates from a uniformly random sample of labeled items.

Items drawn uniformly at random from the pool (evaluation items a client labels, or audit items a query
mixes in) are a random sample of the pool, whatever the model: each model version is scored on the same
sample, and the sample stays unbiased for every one of them because its draw never depended on a model.
Items the strategies chose are not such a sample (they were picked for being hard), which is why a
cross-validated estimate on them is biased and is labelled so wherever it is shown.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest

LEVEL = 0.9
"""Confidence of every interval Sieve reports."""

BIASED_SOURCES = frozenset({"cross_validation"})
"""Sources whose items the strategies chose: an estimate from them is labelled biased wherever shown."""

BOOTSTRAP_RESAMPLES = 2000
"""Resamples of the macro-F1 bootstrap: the percentile's own noise is then about a hundredth of the
interval's width."""


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    low: float
    high: float
    n: int
    level: float
    source: str

    def as_dict(self) -> dict:
        return {**asdict(self), "biased": self.source in BIASED_SOURCES}


def accuracy(correct: int, n: int, source: str, level: float = LEVEL) -> Estimate:
    """Accuracy `correct / n` with its Wilson score interval (Wilson 1927): unlike the normal
    approximation it stays inside [0, 1] and keeps close to its nominal coverage at the small samples and
    high accuracies of early active learning (Brown, Cai & DasGupta 2001)."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"accuracy needs 0 <= correct <= n and n > 0, got {correct} of {n}")
    interval = binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Estimate("accuracy", correct / n, float(interval.low), float(interval.high), int(n), level, source)


def macro_f1(
    y_true: np.ndarray, y_pred: np.ndarray, source: str, rng: np.random.Generator, level: float = LEVEL
) -> Estimate:
    """Macro-F1 over the classes seen in either array, with a percentile bootstrap interval (Efron &
    Tibshirani 1993): macro-F1 has no closed-form interval, and resampling the items is what a new
    random sample of them would do."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError("macro-F1 needs two 1-D arrays of one non-zero length")
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    truth, guess = codes[: len(y_true)], codes[len(y_true) :]
    samples = rng.integers(0, len(truth), size=(BOOTSTRAP_RESAMPLES, len(truth)))
    resampled = _macro_f1(truth[samples], guess[samples], len(classes))
    tail = (1 - level) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    value = float(_macro_f1(truth[None, :], guess[None, :], len(classes))[0])
    return Estimate("macro_f1", value, float(low), float(high), len(truth), level, source)


def _macro_f1(truth: np.ndarray, guess: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of (resamples, items) code arrays, every class weighing the same; a class
    absent from both the truth and the guesses of a resample scores 0, as scikit-learn's f1_score with
    zero_division=0 and labels=every class."""
    f1 = np.zeros(truth.shape[0])
    for c in range(n_classes):
        is_true, is_guess = truth == c, guess == c
        tp = np.sum(is_true & is_guess, axis=1)
        denominator = is_true.sum(axis=1) + is_guess.sum(axis=1)
        f1 += np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0)
    return f1 / n_classes


def of_metrics(metrics: dict | None, level: float = LEVEL) -> dict | None:
    """The accuracy estimate, with its interval, of a model's metrics (on evaluation items, or
    cross-validated on the labeled ones); None when there are no metrics."""
    if not metrics or not metrics.get("n"):
        return None
    n = int(metrics["n"])
    return accuracy(round(metrics["accuracy"] * n), n, metrics["source"], level).as_dict()
