"""Diverse batches: farthest-first (k-center) and D^2 (k-means++) seeding over any embedding."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from sklearn.metrics import pairwise_distances_argmin_min

from sieve.core.matrix import dot_row, sq_norms

SqDistTo = Callable[[int], np.ndarray]
"""sq_dist_to(i): squared distances of every point to point i."""


def as_points(features):
    """A 2-D float array (or a text pool's CSR matrix, kept sparse), float32 kept as is."""
    if sparse.issparse(features):
        x = features.tocsr()
        return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (items x features), got {x.ndim}-D")
    # float32 as the service stores it keeps each pass over the points half as heavy.
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def euclidean_sq_dist_to(points) -> SqDistTo:
    """||x - x_i||^2 = ||x||^2 + ||x_i||^2 - 2 x.x_i: one matrix-vector product per call."""
    x = as_points(points)
    norms = sq_norms(x)
    return lambda i: np.maximum(norms + norms[i] - 2.0 * dot_row(x, i), 0.0)


def sq_dist_to_nearest(points, centers) -> np.ndarray:
    """Squared Euclidean distance of every point to its nearest center (chunked by sklearn)."""
    if centers.shape[0] == 0:
        raise ValueError("no centers to measure distances to")
    return pairwise_distances_argmin_min(as_points(points), as_points(centers))[1].astype(np.float64) ** 2


def _greedy(
    sq_dist_to: SqDistTo, n: int, k: int, initial, first: int | None, choose: Callable[[np.ndarray, np.ndarray], int]
) -> np.ndarray:
    k = min(k, n)
    picked: list[int] = []
    taken = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.inf) if initial is None else np.array(initial, dtype=np.float64)
    while len(picked) < k:
        i = int(first) if first is not None and not picked else choose(nearest, taken)
        picked.append(i)
        taken[i] = True
        nearest = np.minimum(nearest, sq_dist_to(i))
        # Round-off can leave a picked point a hair above 0; it must never be chosen twice.
        nearest[taken] = 0.0
    return np.asarray(picked, dtype=np.int64)


def farthest_first(sq_dist_to: SqDistTo, n: int, k: int, initial=None, first: int | None = None) -> np.ndarray:
    """Greedy k-center (Sener & Savarese 2018, Algorithm 1): k times, the point farthest from its
    nearest center, then that point becomes a center. `initial` holds each point's squared
    distance to the existing centers (the labeled rows); ties go to the lowest index."""
    if initial is None and first is None and min(k, n) > 0:
        raise ValueError("farthest-first needs existing centers or a first point")
    # Once every point coincides with a center, argmax of the zeros would repeat a taken point.
    return _greedy(
        sq_dist_to, n, k, initial, first, lambda nearest, taken: int(np.argmax(np.where(taken, -1.0, nearest)))
    )


def d2_sampling(
    sq_dist_to: SqDistTo, n: int, k: int, rng: np.random.Generator, initial=None, first: int | None = None
) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next point drawn with probability
    proportional to its squared distance to the nearest center chosen so far. The first point is
    `first`, else drawn by D^2 to the `initial` centers, else uniformly. When every point left
    coincides with a center, the next one is drawn uniformly from the points not yet chosen."""
    if first is None and initial is None and min(k, n) > 0:
        first = int(rng.integers(n))

    def choose(nearest: np.ndarray, taken: np.ndarray) -> int:
        # Inverse-CDF draw: what rng.choice(n, p=...) does, without re-validating p at every step.
        # side="right" can never land on a point of weight 0 (a taken one).
        cumulative = np.cumsum(nearest)
        if cumulative[-1] > 0:
            return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return int(rng.choice(np.flatnonzero(~taken)))

    return _greedy(sq_dist_to, n, k, initial, first, choose)


def kcenter(features, rows, labeled, k: int, rng: np.random.Generator) -> np.ndarray:
    """The core-set batch: farthest-first over `rows` with the labeled rows as the first centers
    (a seeded random first row when nothing is labeled). Returns rows of `features`."""
    rows = np.asarray(rows, dtype=np.int64)
    x = as_points(features)
    labeled = np.asarray(labeled, dtype=np.int64)
    if len(labeled):
        picked = farthest_first(
            euclidean_sq_dist_to(x[rows]), len(rows), k, initial=sq_dist_to_nearest(x[rows], x[labeled])
        )
    else:
        picked = farthest_first(
            euclidean_sq_dist_to(x[rows]), len(rows), k, first=int(rng.integers(len(rows))) if len(rows) else None
        )
    return rows[picked]


COLD_START_SAMPLE = 20_000
"""Most rows the cold-start batch is drawn from. k-means++ seeding costs rows x k x dimension: 8 s for
a batch of 256 over 1M x 64 rows, 40 s at 384 wide, all before a new pool's first ranking. A uniform
sample of this many rows keeps every cluster of more than a few hundredths of a percent of the pool."""


def cold_start(features, rows, labeled, k: int, rng: np.random.Generator) -> np.ndarray:
    """A first batch without a model: k-means++ seeding over the features, seeded, treating any
    labeled rows as centers already chosen, so the batch spreads over the pool's clusters. Over a pool
    of more than COLD_START_SAMPLE unlabeled rows, the seeding runs over a seeded uniform sample of them."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > COLD_START_SAMPLE:
        rows = np.sort(rng.choice(rows, size=COLD_START_SAMPLE, replace=False))
    x = as_points(features)
    labeled = np.asarray(labeled, dtype=np.int64)
    initial = sq_dist_to_nearest(x[rows], x[labeled]) if len(labeled) else None
    return rows[d2_sampling(euclidean_sq_dist_to(x[rows]), len(rows), k, rng, initial=initial)]
