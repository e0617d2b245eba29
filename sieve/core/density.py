"""Information density (Settles & Craven 2008): uncertainty weighted by how typical a row is."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize


def _unit_rows(x):
    if sparse.issparse(x):
        # A zero row stays zero: its cosine similarity to anything is 0, as below.
        return normalize(x.astype(np.float64))
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero row has no direction: its cosine similarity to anything is taken as 0.
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def mean_cosine_similarity(features, pool) -> np.ndarray:
    """(1/U) sum_u cos(x, x_u) over the U rows of `pool`, for every row x of `features`.

    Exact in O((n + U) d): the mean of cosines is the cosine numerator against the mean unit
    vector, (1/U) sum_u x^.u^ = x^ . mean(u^), so no n x U similarity matrix (or sample) is needed.
    """
    if not sparse.issparse(pool):
        pool = np.asarray(pool)
    if pool.shape[0] == 0:
        raise ValueError("the pool to compare with is empty")
    return np.asarray(_unit_rows(features) @ np.asarray(_unit_rows(pool).mean(axis=0)).ravel()).ravel()


def information_density(uncertainty, similarity, beta: float = 1.0) -> np.ndarray:
    """phi(x) * sim(x)^beta (Settles & Craven 2008; Settles' 2009 survey, section 5).

    A row whose mean similarity is negative (it points away from the pool) gets density 0, so it
    ranks after every row with some uncertainty and positive density, and beta stays well defined.
    """
    if not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite non-negative number, got {beta!r}")
    u = np.asarray(uncertainty, dtype=np.float64)
    s = np.asarray(similarity, dtype=np.float64)
    if u.shape != s.shape or u.ndim != 1:
        raise ValueError("uncertainty and similarity must be 1-D arrays of the same length")
    return u * np.maximum(s, 0.0) ** beta
