"""Feature rows as numpy arrays (pools of feature vectors) or scipy CSR matrices (text pools), alike."""

from __future__ import annotations

import numpy as np
from scipy import sparse

DENSE_BLOCK_VALUES = 1 << 22
"""Most values a block of sparse rows may be densified into at once (32 MiB as float64), for the few
steps that need dense rows (GaussianNB, some clusterings)."""


def n_rows(features) -> int:
    return features.shape[0]


def block_rows(features, most: int) -> int:
    """Rows to take per block so that densifying one block stays under DENSE_BLOCK_VALUES."""
    if not sparse.issparse(features):
        return most
    return max(1, min(most, DENSE_BLOCK_VALUES // max(features.shape[1], 1)))


def dense_rows(features, rows, dtype=np.float64) -> np.ndarray:
    """The given rows as a dense array: for steps that need dense input, on a bounded sample of rows."""
    picked = features[rows]
    return picked.toarray().astype(dtype, copy=False) if sparse.issparse(picked) else np.asarray(picked, dtype=dtype)


def sq_norms(x) -> np.ndarray:
    """Squared Euclidean norm of every row."""
    if sparse.issparse(x):
        return np.asarray(x.multiply(x).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", x, x)


def dot_row(x, i: int) -> np.ndarray:
    """x · x_i for every row of x, as a dense vector."""
    if sparse.issparse(x):
        return (x @ x[i].T).toarray().ravel()
    return x @ x[i]
