"""Query strategies: pure functions that score and rank unlabeled items by informativeness.

The strategies' names, and which function each runs, are in sieve.core.registry."""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import entr

# Probabilities computed in lower precision cannot be expected to sum to 1 as tightly.
_ROW_SUM_ATOL = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4}
_DEFAULT_ROW_SUM_ATOL = 1e-6


def validate_proba(proba, min_classes: int = 1) -> np.ndarray:
    """Return `proba` as a float64 (n_items, n_classes) array of probability rows.

    Raises ValueError unless it is 2-D with at least `min_classes` columns, finite,
    non-negative, and every row sums to 1.
    """
    raw = np.asarray(proba)
    if np.iscomplexobj(raw):
        raise ValueError("probabilities must be real numbers")
    try:
        arr = raw.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"probabilities must be numeric: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D array (items x classes), got {arr.ndim}-D")
    if arr.shape[1] < min_classes:
        raise ValueError(f"probabilities need at least {min_classes} class column(s), got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("probabilities must be finite (no NaN or infinity)")
    if np.any(arr < 0):
        raise ValueError("probabilities must not be negative")
    atol = _ROW_SUM_ATOL.get(raw.dtype, _DEFAULT_ROW_SUM_ATOL)
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"each probability row must sum to 1 (atol {atol}); row {int(bad[0])} sums to {sums[bad[0]]!r}"
        )
    return arr


def least_confidence(proba) -> np.ndarray:
    """1 - max_c p(c | x): how far the model is from being sure of its top guess."""
    p = validate_proba(proba)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    # Rows may sum to slightly above 1; clipping keeps one-hot rows at exactly 0.
    return np.maximum(1.0 - p.max(axis=1), 0.0)


def margin(proba) -> np.ndarray:
    """1 - (p_(1) - p_(2)): the smaller the gap between the two best classes, the higher."""
    p = validate_proba(proba, min_classes=2)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    # Only the two largest values are needed, so a partial partition beats a full sort.
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def ratio_of_confidence(proba) -> np.ndarray:
    """p_(2) / p_(1): the second most likely class's probability as a share of the most likely one's,
    in [0, 1] (Munro 2021, *Human-in-the-Loop Machine Learning*, ch. 3). Unlike margin it is relative:
    0.6 against 0.4 (2/3) counts as less sure than 0.3 against 0.15 (1/2), though the gap is larger."""
    p = validate_proba(proba, min_classes=2)
    if p.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    # The top probability of a row that sums to 1 is at least 1/K, so the division is safe.
    return top2[:, 0] / top2[:, 1]


def entropy(proba) -> np.ndarray:
    """Shannon entropy -sum_c p ln p in nats, with 0 ln 0 taken as 0."""
    p = validate_proba(proba)
    # entr already defines entr(0) = 0; the clip absorbs round-off from p marginally above 1.
    return np.maximum(entr(p).sum(axis=1), 0.0)


def random_scores(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform scores in [0, 1): the passive-learning baseline, and the only cold-start option."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("the random strategy needs a numpy.random.Generator as rng")
    return rng.random(int(n), dtype=np.float64)


def _as_scores(values) -> np.ndarray:
    try:
        s = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores must be numeric: {exc}") from None
    if s.ndim != 1:
        raise ValueError(f"scores must be a 1-D array, got {s.ndim}-D")
    if np.isnan(s).any():
        raise ValueError("scores must not contain NaN")
    return s


def ranking(scores) -> np.ndarray:
    """Indices of all items, most informative first; equal scores keep index order."""
    s = _as_scores(scores)
    # Negating turns a stable ascending sort into a descending one that still keeps ties in order.
    return np.argsort(-s, kind="stable").astype(np.int64, copy=False)


def top_k(scores, k: int) -> np.ndarray:
    """Exactly ranking(scores)[:k], in O(n + k log k) instead of a full sort."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ValueError(f"k must be an integer, got {k!r}")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    s = _as_scores(scores)
    n = s.shape[0]
    if k >= n:
        return ranking(s)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    neg = -s
    threshold = neg[np.argpartition(neg, k - 1)[k - 1]]
    # argpartition picks an arbitrary subset of the items tied with the k-th score; to match
    # ranking() the tied items must be the lowest-indexed ones, so they are chosen explicitly.
    better = np.flatnonzero(neg < threshold)
    tied = np.flatnonzero(neg == threshold)[: k - better.size]
    candidates = np.concatenate([better, tied])
    order = np.argsort(neg[candidates], kind="stable")
    return candidates[order].astype(np.int64, copy=False)
