"""The default strategy: margin sampling made batch-aware by angle diversity (Brinker, 2003)."""
from __future__ import annotations

import numpy as np

from .strategies import margin, top_k

WEIGHT = 0.5
"""λ of Brinker (2003): how much the margin counts against the angle to what is already chosen."""

PREFILTER = 10
"""Candidates per batch slot: only the PREFILTER * k least-sure rows can enter the batch."""

MAX_LABELED = 2048
"""Labeled rows the angles are measured against: past this many, an evenly spaced subset of them, so a
pool with many labels costs O(PREFILTER * k * MAX_LABELED * d) rather than growing with its labels."""


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def diverse_margin(proba, features, rows, labeled, k: int) -> np.ndarray:
    """Brinker's batch rule, with the multiclass margin as the uncertainty: greedily add the candidate
    maximising  λ · margin_score(x) − (1 − λ) · max |cos(x, z)|  over z among the labeled rows (at most
    MAX_LABELED of them, evenly spaced) and the rows already in the batch. Angles are taken between features centred on the pool's mean, so that
    rows that differ only by the pool's offset do not all look alike.

    Among the same candidates each pick depends only on the previous ones, so a longer batch starts
    with the shorter one: the service picks one batch for its horizon and queries take slices of it.
    Returns rows of `features`, in the order they were picked.
    """
    rows = np.asarray(rows, dtype=np.int64)
    labeled = np.asarray(labeled, dtype=np.int64)
    k = min(int(k), len(rows))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(features)
    center = x.mean(axis=0, dtype=np.float64)
    uncertainty = margin(np.asarray(proba)[rows])
    best = top_k(uncertainty, PREFILTER * k)
    candidates, u = rows[best], uncertainty[best]
    unit = _unit_rows(x[candidates].astype(np.float64) - center)
    if len(labeled) > MAX_LABELED:
        labeled = labeled[np.linspace(0, len(labeled) - 1, MAX_LABELED).astype(np.int64)]
    similarity = np.zeros(len(candidates))
    if len(labeled):
        similarity = np.abs(unit @ _unit_rows(x[labeled].astype(np.float64) - center).T).max(axis=1)
    picked = np.zeros(len(candidates), dtype=bool)
    order = np.empty(k, dtype=np.int64)
    for i in range(k):
        value = WEIGHT * u - (1.0 - WEIGHT) * similarity
        value[picked] = -np.inf
        j = int(np.argmax(value))  # ties: the least sure candidate first
        order[i], picked[j] = j, True
        similarity = np.maximum(similarity, np.abs(unit @ unit[j]))
    return candidates[order]
