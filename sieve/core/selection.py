"""Choosing a batch of k rows to label: one entry point over every query strategy."""

from __future__ import annotations

import numbers

import numpy as np
from scipy import sparse

from sieve.core import diversity
from sieve.core.candidates import Candidates
from sieve.core.registry import BATCH, DEFAULT_STRATEGY, REGISTRY, Registry
from sieve.core.strategies import top_k

__all__ = ["ALL_STRATEGIES", "BATCH_STRATEGIES", "Candidates", "DEFAULT_STRATEGY", "RANKING_STRATEGIES"]

RANKING_STRATEGIES: tuple[str, ...] = REGISTRY.ranking
"""A score per row: the batch of k is the top k of one ranking, which can be stored and walked."""

BATCH_STRATEGIES: tuple[str, ...] = REGISTRY.batch
"""The batch depends on k as a whole (each pick depends on the previous ones): no static ranking."""

ALL_STRATEGIES: tuple[str, ...] = REGISTRY.names


def is_batch(strategy: str, registry: Registry = REGISTRY) -> bool:
    """Whether the strategy's answer depends on k as a batch; ValueError for an unknown name."""
    return registry[strategy].kind == BATCH


def _unlabeled_rows(c: Candidates) -> np.ndarray:
    features = c.features if sparse.issparse(c.features) else np.asarray(c.features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (items x features), got {features.ndim}-D")
    rows = np.asarray(c.unlabeled, dtype=np.int64)
    labeled = np.asarray(c.labeled, dtype=np.int64)
    for name, idx in (("unlabeled", rows), ("labeled", labeled)):
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= features.shape[0])):
            raise ValueError(f"{name} must be a 1-D array of row indices into features")
    if len(labeled) != len(np.asarray(c.labels)):
        raise ValueError("labels must hold one label per labeled row")
    if np.isin(rows, labeled).any():
        raise ValueError("a row cannot be both labeled and unlabeled")
    if c.proba is not None and np.shape(c.proba)[0] != features.shape[0]:
        raise ValueError("proba must hold one row per row of features")
    return rows


def ranking_scores(strategy: str, candidates: Candidates, registry: Registry = REGISTRY) -> np.ndarray:
    """The score of every unlabeled row (in `candidates.unlabeled` order) for a ranking strategy,
    higher = more informative: what a stored ranking is sorted by. Needs a model (not a cold start)
    unless the strategy needs none (random)."""
    entry = registry[strategy]
    if entry.kind == BATCH:
        raise ValueError(f"{strategy!r} picks a batch as a whole and has no score per row")
    rows = _unlabeled_rows(candidates)
    if entry.needs_model and candidates.cold_start:
        raise ValueError(f"{strategy!r} needs a model's probabilities; this is a cold start")
    return entry.score(candidates, rows)


def select(strategy: str, candidates: Candidates, k: int, registry: Registry = REGISTRY) -> np.ndarray:
    """Rows (indices into `features`) to label next, most informative first; at most k of them,
    all distinct, all unlabeled.

    In a cold start (`candidates.cold_start`: no model yet) every strategy that needs a model (all but
    random) answers a diverse first batch instead: k-means++ seeding over the features, seeded by
    `candidates.rng` (see diversity.cold_start); random stays a seeded random batch. So a batch was
    chosen by the cold-start rule exactly when `candidates.cold_start` is true.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    entry = registry[strategy]
    rows = _unlabeled_rows(candidates)
    k = min(int(k), len(rows))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if entry.needs_model and candidates.cold_start:
        return diversity.cold_start(candidates.features, rows, candidates.labeled, k, candidates.rng)
    if entry.kind == BATCH:
        return entry.select(candidates, rows, k)
    return rows[top_k(ranking_scores(strategy, candidates, registry), k)]
