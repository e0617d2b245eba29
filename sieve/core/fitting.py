"""Fitting a pool's model on its labeled rows and scoring rows with it."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags

from sieve.core.estimators import build_estimator
from sieve.core.matrix import block_rows, n_rows

SCORING_ROWS = 16_384
"""Rows scored per predict_proba call, so memory stays flat on large pools (fewer for sparse rows, so that
a model that needs dense input densifies a bounded block). The blocks start at row 0 whoever scores them:
a sharded refresh cuts its shards on them (core/sharding.py), so that every row is scored in the same block
of rows, hence to the same bits, sharded or not. Smaller blocks cost more calls (8,192: 17 % slower)."""


def dense(matrix):
    """Sparse rows (a text pool's, or TfidfTransformer's answer) for models that do not take them (GaussianNB)."""
    return matrix.toarray() if sparse.issparse(matrix) else matrix


def takes_sparse(model) -> bool:
    return get_tags(model).input_tags.sparse


def training_rows(features, rows, featurizer: dict | None):
    """The rows a model is fitted on, as float64, and the tf-idf step that made them (None without tf-idf).
    A text pool that asks for tf-idf learns its inverse document frequencies from every row of the pool,
    labeled or not."""
    X = features[rows].astype(np.float64)
    if not (featurizer and featurizer.get("tfidf")):
        return X, None
    tfidf = TfidfTransformer().fit(features)
    return tfidf.transform(X), tfidf


def fit(
    features, labeled_rows: np.ndarray, labels: list[str], spec: dict, random_state: int, featurizer: dict | None = None
):
    """Fits the pool's estimator on its labeled rows (features: an array, or a text pool's CSR rows). A
    text pool that asks for tf-idf gets a pipeline whose inverse document frequencies are learned from
    every row of the pool, labeled or not. Sparse rows stay sparse unless the estimator needs dense ones."""
    model = build_estimator(spec, random_state=random_state)
    y = np.asarray(labels)
    # float64 so that a model trained here matches one trained in-process on the same data.
    X, tfidf = training_rows(features, labeled_rows, featurizer)
    steps = [] if tfidf is None else [("tfidf", tfidf)]
    if sparse.issparse(X) and not takes_sparse(model):
        steps.append(("dense", FunctionTransformer(dense, accept_sparse=True).fit(X[:1])))
        _fit_dense_blocks(model, X, y)
    else:
        model.fit(X, y)
    # Every step is fitted already; the pipeline only chains them for predict_proba.
    return Pipeline([*steps, ("model", model)]) if steps else model


def _fit_dense_blocks(model, X, y) -> None:
    """Fits a dense-only model on sparse rows a bounded block at a time when it learns incrementally."""
    step = block_rows(X, n_rows(X))
    if step >= n_rows(X) or not hasattr(model, "partial_fit"):
        model.fit(dense(X), y)
        return
    classes = np.unique(y)
    for i in range(0, n_rows(X), step):
        model.partial_fit(dense(X[i : i + step]), y[i : i + step], classes=classes)


def predict_proba(model, features, dense_blocks: bool = False) -> np.ndarray:
    """Probabilities of every row, a bounded block at a time; with `dense_blocks`, sparse rows are made
    dense block by block, for a model that was fitted on dense rows and may not take sparse ones."""
    step = block_rows(features, SCORING_ROWS)
    prepare = dense if dense_blocks else (lambda block: block)
    parts = [
        model.predict_proba(prepare(features[i : i + step]).astype(np.float64))
        for i in range(0, n_rows(features), step)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, len(model.classes_)))
