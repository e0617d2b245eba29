"""Every query strategy, one table entry each: the rest of Sieve (validation, schemas, Label Studio's
scores, the refresh loop) reads what a strategy is and how it runs from here."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sieve.core import auto, badge, clustering, committee, density, diversity
from sieve.core.candidates import Candidates
from sieve.core.strategies import (
    entropy,
    least_confidence,
    margin,
    random_scores,
    ratio_of_confidence,
    validate_proba,
)

RANKING = "ranking"
"""A score per row: the batch of k is the top k of one ranking, which can be stored and walked."""

BATCH = "batch"
"""The batch depends on k as a whole (each pick depends on the previous ones): no static ranking."""

ScoreRows = Callable[[Candidates, np.ndarray], np.ndarray]
PickBatch = Callable[[Candidates, np.ndarray, int], np.ndarray]

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def stream_key(name: str) -> int:
    """The number that, with a pool's seed and version, seeds a strategy's random stream. It depends on
    the name alone, so adding or reordering strategies leaves every other strategy's picks as they were."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Strategy:
    """One query strategy.

    A ranking strategy gives `score(candidates, rows)`, the informativeness of each of `rows` (higher
    first), or `proba_score(proba)` when a row's score follows from its own probabilities alone (then
    Label Studio can score a single item, and `score` is derived from it). A batch strategy gives
    `select(candidates, rows, k)`, the k rows it picks, in the order picked.

    `needs_model`: without a model (a cold start) the diverse cold-start batch answers instead.
    `score_bound(n_classes)`: the largest score with that many classes, for strategies whose scores lie
    in [0, bound]; Label Studio's scores are scaled by it (None: only the order means anything).
    `always_ranked`: ranked at every refresh of every pool, not only of the pools that use it.
    """

    name: str
    kind: str
    score: ScoreRows | None = None
    select: PickBatch | None = None
    needs_model: bool = True
    proba_score: Callable[[np.ndarray], np.ndarray] | None = None
    score_bound: Callable[[int], float] | None = None
    always_ranked: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"a strategy name is lowercase letters, digits and underscores, got {self.name!r}")
        if self.kind == RANKING:
            if (self.score is None) == (self.proba_score is None) or self.select is not None:
                raise ValueError(f"ranking strategy {self.name!r} needs exactly one of score or proba_score")
            if self.proba_score is not None:
                object.__setattr__(self, "score", _rows_of_proba(self.proba_score))
        elif self.kind == BATCH:
            if self.select is None or self.score or self.proba_score or self.score_bound or self.always_ranked:
                raise ValueError(f"batch strategy {self.name!r} needs select and has no score per row")
        else:
            raise ValueError(f"a strategy's kind is {RANKING!r} or {BATCH!r}, got {self.kind!r}")

    @property
    def stream(self) -> int:
        return stream_key(self.name)


def _rows_of_proba(proba_score) -> ScoreRows:
    def score(c: Candidates, rows: np.ndarray) -> np.ndarray:
        return proba_score(c.proba[rows])

    return score


class Registry:
    """Strategies by name, ranking strategies first (in table order), then batch strategies."""

    def __init__(self, strategies: Iterable[Strategy]):
        entries = list(strategies)
        self._by_name = {s.name: s for s in entries}
        if len(self._by_name) != len(entries):
            raise ValueError("two strategies share a name")
        if len({s.stream for s in entries}) != len(entries):
            raise ValueError("two strategies share a random stream")
        self.ranking: tuple[str, ...] = tuple(s.name for s in entries if s.kind == RANKING)
        self.batch: tuple[str, ...] = tuple(s.name for s in entries if s.kind == BATCH)
        self.names: tuple[str, ...] = self.ranking + self.batch
        self.always_ranked: tuple[str, ...] = tuple(s.name for s in entries if s.always_ranked)

    def __getitem__(self, name: str) -> Strategy:
        entry = self._by_name.get(name) if isinstance(name, str) else None
        if entry is None:
            raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(self.names)}")
        return entry

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[Strategy]:
        return (self._by_name[name] for name in self.names)

    def get(self, name) -> Strategy | None:
        return self._by_name.get(name) if isinstance(name, str) else None

    def adding(self, *strategies: Strategy) -> Registry:
        """This registry with more strategies (which leave the picks of the ones here unchanged)."""
        return Registry([*self, *strategies])


def _random(c: Candidates, rows: np.ndarray) -> np.ndarray:
    return random_scores(len(rows), c.rng)


def _vote_entropy(c: Candidates, rows: np.ndarray) -> np.ndarray:
    return committee.vote_entropy(committee.committee_proba(c.features, c.labeled, c.labels, rows, c.spec, c.rng))


def _consensus_kl(c: Candidates, rows: np.ndarray) -> np.ndarray:
    return committee.consensus_kl(committee.committee_proba(c.features, c.labeled, c.labels, rows, c.spec, c.rng))


def _density_weighted(c: Candidates, rows: np.ndarray) -> np.ndarray:
    return density.information_density(
        entropy(c.proba[rows]), density.mean_cosine_similarity(c.features[rows], c.features[rows])
    )


def _kcenter(c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    return diversity.kcenter(c.features, rows, c.labeled, k, c.rng)


def _margin_diversity(c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    return clustering.margin_diversity(c.proba, c.features, rows, k, c.rng)


def _badge(c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    return rows[badge.badge(c.proba[rows], c.features[rows], k, c.rng)]


def _cluster_margin(c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    return clustering.cluster_margin(c.proba, c.features, rows, k, c.rng)


def _uncertainty_herding(c: Candidates, rows: np.ndarray, k: int) -> np.ndarray:
    return auto.uncertainty_herding(c.proba, c.features, rows, c.labeled, k, c.rng)


def _one(n_classes: int) -> float:
    return 1.0


def _least_confidence_bound(n_classes: int) -> float:
    return 1.0 - 1.0 / max(n_classes, 2)


def _entropy_bound(n_classes: int) -> float:
    return math.log(max(n_classes, 2))


REGISTRY = Registry(
    [
        Strategy(
            "least_confidence",
            RANKING,
            proba_score=least_confidence,
            score_bound=_least_confidence_bound,
            always_ranked=True,
        ),
        Strategy("margin", RANKING, proba_score=margin, score_bound=_one, always_ranked=True),
        Strategy("entropy", RANKING, proba_score=entropy, score_bound=_entropy_bound, always_ranked=True),
        Strategy("random", RANKING, score=_random, needs_model=False, score_bound=_one, always_ranked=True),
        Strategy("qbc_vote_entropy", RANKING, score=_vote_entropy),
        Strategy("qbc_kl", RANKING, score=_consensus_kl),
        Strategy("density_weighted", RANKING, score=_density_weighted),
        Strategy("kcenter", BATCH, select=_kcenter),
        Strategy("margin_diversity", BATCH, select=_margin_diversity),
        Strategy("badge", BATCH, select=_badge),
        Strategy("cluster_margin", BATCH, select=_cluster_margin),
        Strategy("auto", BATCH, select=_uncertainty_herding),
        Strategy("ratio_of_confidence", RANKING, proba_score=ratio_of_confidence, score_bound=_one),
    ]
)

DEFAULT_STRATEGY = "auto"
"""A new pool's strategy unless it names one: the most robust in `sieve simulate` (docs/simulations.md)."""

BASELINE = "random"
"""Ranked at every refresh: what the others are measured against, and the order of the unlabeled rows."""

COLD_START_STREAM = "cold start"
"""The random stream of the diverse first batch every strategy that needs a model shares in a cold start
(a name no strategy can have)."""


def scores(strategy: str, proba, rng: np.random.Generator | None = None, registry: Registry = REGISTRY) -> np.ndarray:
    """Every row's score from its probabilities alone, higher = more informative; a strategy that needs
    no model scores the rows from `rng` alone. ValueError for any other strategy."""
    entry = registry[strategy]
    if entry.proba_score is not None:
        return entry.proba_score(proba)
    if entry.needs_model or entry.kind != RANKING:
        raise ValueError(f"{strategy!r} does not score a row from its probabilities alone")
    if rng is None:
        raise ValueError(f"the {strategy} strategy needs an rng")
    n = validate_proba(proba).shape[0]
    none = np.zeros(0, dtype=np.int64)
    bare = Candidates(np.zeros((n, 0)), np.arange(n), none, none, None, None, {}, rng)
    return entry.score(bare, np.arange(n))
