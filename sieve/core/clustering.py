"""Batches that cluster the least-sure rows: diverse mini-batches and cluster-margin."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import pairwise_distances_argmin

from sieve.core.matrix import dense_rows
from sieve.core.strategies import margin, top_k

PREFILTER = 10
"""Candidates per batch slot: the beta of Zhdanov (2019) and the k_m / k of Citovsky et al. (2021)."""

CLUSTER_SAMPLE = 3_000
"""Pool rows whose clusters cluster-margin computes; every candidate joins its nearest one's cluster."""


def _candidates(proba, rows, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The PREFILTER * k rows of smallest margin (most informative first) and their margin scores."""
    s = margin(proba)
    best = top_k(s, PREFILTER * k)
    return rows[best], s[best]


def margin_diversity(proba, features, rows, k: int, rng: np.random.Generator) -> np.ndarray:
    """Diverse mini-batch (Zhdanov 2019): the PREFILTER*k smallest-margin rows, clustered by k-means
    weighted by their margin score into k clusters; from each, the row nearest its centroid.
    The batch comes back most informative (smallest margin) first."""
    rows = np.asarray(rows, dtype=np.int64)
    cand, score = _candidates(proba[rows], rows, k)
    if len(cand) <= k:
        return cand
    x = dense_rows(features, cand)  # PREFILTER * k rows
    # A certain row has score 0; a weight of 0 for every member would leave a centroid undefined.
    weights = np.maximum(score, 1e-12)
    km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31))).fit(x, sample_weight=weights)
    dist = np.linalg.norm(x - km.cluster_centers_[km.labels_], axis=1)
    # For each cluster, its member nearest the centroid (lexsort: by cluster, then distance).
    order = np.lexsort((dist, km.labels_))
    firsts = order[np.r_[True, km.labels_[order][1:] != km.labels_[order][:-1]]]
    picked = np.sort(firsts)  # candidates are already most informative first
    if len(picked) < k:  # duplicate rows can leave clusters empty: fill from the top by margin
        rest = np.setdiff1d(np.arange(len(cand)), picked)
        picked = np.sort(np.concatenate([picked, rest[: k - len(picked)]]))
    return cand[picked]


def cluster_margin(proba, features, rows, k: int, rng: np.random.Generator) -> np.ndarray:
    """Cluster-margin (Citovsky et al. 2021, Algorithm 1): the PREFILTER*k smallest-margin rows,
    grouped by the pool's average-linkage agglomerative clusters; clusters visited smallest first,
    round robin, one random row of each per visit, until k rows are taken.

    The paper clusters the whole pool once, with a distance threshold. Here, at each call, a seeded
    sample of CLUSTER_SAMPLE unlabeled rows (the whole pool when smaller) is clustered into k
    clusters, and each candidate joins the cluster of its nearest sampled row: O(CLUSTER_SAMPLE^2)
    time and memory whatever the pool's size and k.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cand, _ = _candidates(proba[rows], rows, k)
    if len(cand) <= k:
        return cand
    sample = np.sort(rng.choice(rows, size=min(CLUSTER_SAMPLE, len(rows)), replace=False))
    x = dense_rows(features, sample)  # CLUSTER_SAMPLE rows at most
    clusters = AgglomerativeClustering(n_clusters=min(k, len(sample)), linkage="average").fit_predict(x)
    nearest = pairwise_distances_argmin(features[cand].astype(np.float64), x)
    # Sizes count candidates only: the paper's C^M, its clusters restricted to the margin set M.
    return cand[round_robin(clusters[nearest], rng)[:k]]


def round_robin(cluster_labels, rng: np.random.Generator) -> np.ndarray:
    """Positions of the items in the order cluster-margin takes them: clusters sorted by size,
    smallest first (ties: lower label first); round r takes the r-th item of every cluster with
    more than r items, each cluster's items in a seeded random order."""
    _, cluster, sizes = np.unique(np.asarray(cluster_labels), return_inverse=True, return_counts=True)
    turn = np.argsort(np.argsort(sizes, kind="stable"), kind="stable")[cluster]
    # A seeded shuffle gives each item its place in its cluster's queue.
    order = np.lexsort((rng.permutation(len(cluster)), cluster))
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    place = np.empty(len(cluster), dtype=np.int64)
    place[order] = np.arange(len(cluster)) - starts[cluster[order]]
    return np.lexsort((turn, place))
