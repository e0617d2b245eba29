"""Choosing a batch of k rows to label: one entry point over every query strategy."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .strategies import STRATEGIES, scores, top_k


@dataclass(frozen=True)
class Candidates:
    """What a strategy may look at when it picks a batch.

    `proba` holds the current model's probabilities for every row of `features` (None in a cold
    start, when fewer than two classes are labeled and there is no model).
    """

    features: np.ndarray
    unlabeled: np.ndarray
    labeled: np.ndarray
    labels: np.ndarray
    proba: np.ndarray | None
    model: object | None
    spec: dict
    rng: np.random.Generator

    @property
    def cold_start(self) -> bool:
        return self.proba is None


def select(strategy: str, candidates: Candidates, k: int) -> np.ndarray:
    """Rows (indices into `features`) to label next, most informative first; at most k of them."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    rows = np.asarray(candidates.unlabeled, dtype=np.int64)
    if candidates.cold_start or strategy == "random":
        return rows[top_k(candidates.rng.random(len(rows)), k)]
    return rows[top_k(scores(strategy, candidates.proba[rows]), k)]
