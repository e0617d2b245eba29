"""BADGE (Ash et al. 2020): k-means++ seeding on the gradient embeddings of the last layer."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from sieve.core.diversity import as_points, d2_sampling
from sieve.core.matrix import dot_row, sq_norms
from sieve.core.strategies import validate_proba


def _parts(proba, features) -> tuple[np.ndarray, np.ndarray]:
    p = validate_proba(proba, min_classes=1)
    x = as_points(features)
    if x.shape[0] != len(p):
        raise ValueError("features must hold one row per probability row")
    residual = p.copy()
    residual[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
    ones = np.ones((x.shape[0], 1), dtype=x.dtype)
    return residual, (sparse.hstack([x, ones], format="csr") if sparse.issparse(x) else np.hstack([x, ones]))


def gradient_embedding(proba, features) -> np.ndarray:
    """g(x) = (p - onehot(argmax p)) (x) [x, 1], flattened class by class: the gradient of the
    cross-entropy loss, at the model's own most likely label, with respect to the weights and bias
    of a softmax last layer whose input is x. n x classes*(d+1); for small arrays and tests."""
    residual, xb = _parts(proba, features)
    xb = xb.toarray() if sparse.issparse(xb) else xb
    return (residual[:, :, None] * xb[:, None, :]).reshape(len(xb), -1)


def badge(proba, features, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into proba's rows) of a BADGE batch: the first is the largest gradient norm, as in
    Ash et al.'s code; the rest are k-means++ draws (D^2 sampling) on the gradient embeddings.

    The embedding is never built: for g_i = a_i (x) x_i, <g_i, g_j> = (a_i . a_j)(x_i . x_j), so each
    distance pass costs n (classes + d + 1) instead of n classes (d + 1).
    """
    residual, xb = _parts(proba, features)
    norms = np.einsum("ij,ij->i", residual, residual) * sq_norms(xb)

    def sq_dist_to(i: int) -> np.ndarray:
        dot = (residual @ residual[i]) * dot_row(xb, i)
        return np.maximum(norms + norms[i] - 2.0 * dot, 0.0)

    first = int(np.argmax(norms)) if len(norms) else None
    return d2_sampling(sq_dist_to, len(norms), k, rng, first=first)
