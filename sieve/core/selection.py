"""Choosing a batch of k rows to label: one entry point over every query strategy."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from sieve.core import auto, badge, clustering, committee, density, diversity
from sieve.core.strategies import STRATEGIES, entropy, scores, top_k

RANKING_STRATEGIES: tuple[str, ...] = STRATEGIES + ("qbc_vote_entropy", "qbc_kl", "density_weighted")
"""A score per row: the batch of k is the top k of one ranking, which can be stored and walked."""

BATCH_STRATEGIES: tuple[str, ...] = ("kcenter", "margin_diversity", "badge", "cluster_margin", "auto")
"""The batch depends on k as a whole (each pick depends on the previous ones): no static ranking."""

ALL_STRATEGIES: tuple[str, ...] = RANKING_STRATEGIES + BATCH_STRATEGIES

DEFAULT_STRATEGY = "auto"
"""A new pool's strategy unless it names one: the most robust in `sieve simulate` (docs/simulations.md)."""


@dataclass(frozen=True)
class Candidates:
    """What a strategy may look at when it picks a batch.

    `proba` holds the current model's probabilities for every row of `features` (None in a cold
    start, when fewer than two classes are labeled and there is no model). `labels` are the labels
    of the `labeled` rows, in the same order; `spec` is the pool's model spec (query by committee
    builds its members from it).
    """

    features: np.ndarray | sparse.csr_matrix
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


def is_batch(strategy: str) -> bool:
    """Whether the strategy's answer depends on k as a batch; ValueError for an unknown name."""
    _check_strategy(strategy)
    return strategy in BATCH_STRATEGIES


def _check_strategy(strategy) -> None:
    if not isinstance(strategy, str) or strategy not in ALL_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(ALL_STRATEGIES)}")


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


def ranking_scores(strategy: str, candidates: Candidates) -> np.ndarray:
    """The score of every unlabeled row (in `candidates.unlabeled` order) for a ranking strategy,
    higher = more informative: what a stored ranking is sorted by. Needs a model (not a cold start)
    except for random."""
    _check_strategy(strategy)
    if strategy in BATCH_STRATEGIES:
        raise ValueError(f"{strategy!r} picks a batch as a whole and has no score per row")
    c = candidates
    rows = _unlabeled_rows(c)
    if strategy == "random":
        return c.rng.random(len(rows))
    if c.cold_start:
        raise ValueError(f"{strategy!r} needs a model's probabilities; this is a cold start")
    if strategy in STRATEGIES:
        return scores(strategy, c.proba[rows])
    if strategy == "density_weighted":
        return density.information_density(
            entropy(c.proba[rows]), density.mean_cosine_similarity(c.features[rows], c.features[rows])
        )
    members = committee.committee_proba(c.features, c.labeled, c.labels, rows, c.spec, c.rng)
    return committee.vote_entropy(members) if strategy == "qbc_vote_entropy" else committee.consensus_kl(members)


def _batch(strategy: str, c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    if strategy == "auto":
        return auto.uncertainty_herding(c.proba, c.features, rows, c.labeled, k, c.rng)
    if strategy == "kcenter":
        return diversity.kcenter(c.features, rows, c.labeled, k, c.rng)
    if strategy == "badge":
        return rows[badge.badge(c.proba[rows], c.features[rows], k, c.rng)]
    pick = clustering.margin_diversity if strategy == "margin_diversity" else clustering.cluster_margin
    return pick(c.proba, c.features, rows, k, c.rng)


def select(strategy: str, candidates: Candidates, k: int) -> np.ndarray:
    """Rows (indices into `features`) to label next, most informative first; at most k of them,
    all distinct, all unlabeled.

    In a cold start (`candidates.cold_start`: no model yet) every strategy but random answers a
    diverse first batch instead: k-means++ seeding over the features, seeded by `candidates.rng`
    (see diversity.cold_start); random stays a seeded random batch. So a batch was chosen by the
    cold-start rule exactly when `candidates.cold_start` is true.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    _check_strategy(strategy)
    rows = _unlabeled_rows(candidates)
    k = min(int(k), len(rows))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if strategy != "random" and candidates.cold_start:
        return diversity.cold_start(candidates.features, rows, candidates.labeled, k, candidates.rng)
    if strategy in BATCH_STRATEGIES:
        return _batch(strategy, candidates, rows, k)
    return rows[top_k(ranking_scores(strategy, candidates), k)]
