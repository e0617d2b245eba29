"""The default strategy: uncertainty herding (Bae, Oliveira and Sutherland, 2025).

Greedy maximisation of *uncertainty coverage*: every pool row counts, weighted by how unsure the model is
of it, for as much as its nearest chosen or labeled row covers it under a Gaussian kernel. With few labels
the kernel is wide and the weights are alike, so the batch spreads over the pool's dense regions
(MaxHerding, Bae, Noh and Sutherland, 2024: what works when labels are few); as labels accumulate the
kernel narrows and the weights dominate, so the batch becomes uncertainty sampling kept apart by the
kernel (what works when labels are many). Nothing needs to know which regime a pool is in.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy import sparse
from sklearn.metrics.pairwise import euclidean_distances

from sieve.core.diversity import sq_dist_to_nearest
from sieve.core.strategies import margin

SAMPLE = 2048
"""Most unlabeled rows the coverage is measured on, which are also the candidates: beyond this many, a
seeded uniform sample, so a batch costs the same for a pool of 2,048 rows or of millions."""

MAX_LABELED = 2048
"""Labeled rows the coverage already counts: past this many, an evenly spaced subset of them."""

SHARPNESS = 2
"""Power the margin uncertainty is raised to: rows the model is sure of weigh little sooner."""


def bandwidth(nearest: np.ndarray) -> float:
    """σ² of the kernel from each unlabeled row's squared distance to its nearest labeled row: their median,
    so the kernel reaches about as far as the labels leave rows uncovered and narrows as labels are added."""
    positive = nearest[nearest > 0]
    return float(np.median(positive)) if positive.size else 1.0


def greedy_coverage(reach: np.ndarray, weights: np.ndarray, cover: np.ndarray, k: int) -> np.ndarray:
    """Greedy maximisation of  Σ_i w_i · max(cover_i, max_{j in S} reach_ji)  over sets S of k candidates,
    where reach_ji is how much candidate j covers row i (one row of `reach` per candidate).

    The objective is monotone submodular (weighted facility location), so a candidate's gain can only
    shrink as the set grows: lazy evaluation (Minoux, 1978) re-computes only the candidates that come to
    the top, and picks what plain greedy would, ties going to the lower candidate. Returns candidates in
    pick order.
    """
    cover = np.array(cover, dtype=np.float64)
    k = min(int(k), reach.shape[0])
    gains = np.maximum(reach - cover, 0.0) @ weights
    heap = [(-g, j) for j, g in enumerate(gains.tolist())]
    heapq.heapify(heap)
    picked: list[int] = []
    while len(picked) < k:
        _, j = heapq.heappop(heap)
        fresh = float(np.maximum(reach[j] - cover, 0.0) @ weights)
        if not heap or (-fresh, j) <= heap[0]:
            picked.append(j)
            np.maximum(cover, reach[j], out=cover)
        else:
            heapq.heappush(heap, (-fresh, j))
    return np.asarray(picked, dtype=np.int64)


def uncertainty_herding(proba, features, rows, labeled, k: int, rng: np.random.Generator) -> np.ndarray:
    """k of the unlabeled `rows`, in pick order, by greedy uncertainty coverage over (a sample of) them.

    Weights: the margin uncertainty 1 − (p₁ − p₂), raised to SHARPNESS; kernel exp(−‖x − z‖² / σ²) with σ² from
    `bandwidth`. Each pick depends only on the previous ones, so a longer batch starts with the shorter
    one: the service picks one batch for its horizon and queries take slices of it.
    """
    rows = np.asarray(rows, dtype=np.int64)
    labeled = np.asarray(labeled, dtype=np.int64)
    k = min(int(k), len(rows))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if len(rows) > SAMPLE:
        rows = np.sort(rng.choice(rows, size=SAMPLE, replace=False))
    if len(labeled) > MAX_LABELED:
        labeled = labeled[np.linspace(0, len(labeled) - 1, MAX_LABELED).astype(np.int64)]
    # A text pool's CSR rows stay sparse: scikit-learn's distances take them.
    features = features if sparse.issparse(features) else np.asarray(features)
    x = features[rows].astype(np.float64)
    # A row is covered by the labels as much as by its nearest labeled row: exp is decreasing.
    nearest = sq_dist_to_nearest(x, features[labeled]) if len(labeled) else np.zeros(0)
    sigma2 = bandwidth(nearest)
    kernel = np.exp(-euclidean_distances(x, squared=True) / sigma2)  # symmetric: row j is what candidate j reaches
    cover = np.exp(-nearest / sigma2) if len(labeled) else np.zeros(len(rows))
    weights = margin(np.asarray(proba)[rows]) ** SHARPNESS
    return rows[greedy_coverage(kernel, weights, cover, k)]
