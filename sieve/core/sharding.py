"""A refresh's scoring cut into contiguous shards of rows that separate workers score with one fitted model,
and the merge of what they ranked into the very order an unsharded refresh gives.

Identical by construction: a shard starts and ends on the scoring blocks `predict_proba` uses for the whole
pool, so every row's probabilities come from the same block of rows either way; a strategy sharded here
scores a row from its own probabilities alone; and the merge sorts the shards' sorted runs, in row order,
with the same stable sort, so ties still go to the earlier row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sieve.core.fitting import SCORING_ROWS, predict_proba
from sieve.core.matrix import block_rows
from sieve.core.registry import REGISTRY, Registry
from sieve.core.strategies import ranking


def scored_in_shards(strategies, registry: Registry = REGISTRY) -> tuple[str, ...]:
    """The strategies whose scores follow from each row's probabilities alone: shards rank them. The
    others (random's single stream, committees, density, batch strategies) need every row at once and are
    ranked after the merge, from the merged probabilities, as an unsharded refresh ranks them."""
    return tuple(name for name in dict.fromkeys(strategies) if registry[name].proba_score is not None)


def shard_bounds(features, shard_rows: int) -> list[tuple[int, int]]:
    """The shards' row ranges [first, stop): about `shard_rows` rows each, rounded up to whole scoring blocks.
    A single range when the pool has no more rows than `shard_rows` (it is not sharded)."""
    n = features.shape[0]
    step = block_rows(features, SCORING_ROWS)
    size = -(-max(shard_rows, 1) // step) * step
    if n <= shard_rows or n <= size:
        return [(0, n)]
    return [(first, min(n, first + size)) for first in range(0, n, size)]


@dataclass(frozen=True)
class ShardScores:
    """One shard's probabilities (rows first..stop-1) and, per strategy, its unlabeled rows most informative
    first with their scores."""

    first: int
    stop: int
    proba: np.ndarray
    orders: dict[str, tuple[np.ndarray, np.ndarray]]


def score_shard(
    model,
    features,
    first: int,
    excluded: np.ndarray,
    strategies: tuple[str, ...],
    registry: Registry = REGISTRY,
) -> ShardScores:
    """Scores the rows `features` (the pool's rows from `first` on) with the fitted model, and ranks the
    rows not in `excluded` (training and evaluation rows, pool row numbers) for each strategy."""
    proba = predict_proba(model, features)
    stop = first + features.shape[0]
    mask = np.ones(stop - first, dtype=bool)
    inside = excluded[(excluded >= first) & (excluded < stop)]
    mask[inside - first] = False
    local = np.flatnonzero(mask)
    orders = {}
    for name in strategies:
        scores = registry[name].proba_score(proba[local])
        order = ranking(scores)
        orders[name] = ((local[order] + first).astype(np.int64), scores[order])
    return ShardScores(first=first, stop=stop, proba=proba, orders=orders)


def merge(shards: list[ShardScores], strategies: tuple[str, ...]) -> tuple[np.ndarray, dict]:
    """The whole pool's probabilities and each strategy's order of its unlabeled rows, from every shard in row
    order. The stable sort finds the shards' sorted runs and merges them (O(n log shards)); equal scores keep
    their place, which is row order, as in an unsharded ranking."""
    if [s.first for s in shards] != [0, *(s.stop for s in shards[:-1])]:
        raise ValueError("shards must cover the pool's rows in order, without gaps")
    proba = np.concatenate([s.proba for s in shards])
    orders = {}
    for name in strategies:
        rows = np.concatenate([s.orders[name][0] for s in shards])
        scores = np.concatenate([s.orders[name][1] for s in shards])
        order = ranking(scores)
        orders[name] = (rows[order], scores[order])
    return proba, orders
