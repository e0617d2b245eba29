"""Fitting a pool's model on its labeled rows and scoring rows with it."""
from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from .estimators import build_estimator

SCORING_ROWS = 65_536
"""Rows scored per predict_proba call, so memory stays flat on large pools."""


def dense(matrix):
    """TfidfTransformer answers sparse matrices, which some models (GaussianNB) do not take."""
    return matrix.toarray() if sparse.issparse(matrix) else matrix


def fit(features: np.ndarray, labeled_rows: np.ndarray, labels: list[str], spec: dict, random_state: int,
        featurizer: dict | None = None):
    """Fits the pool's estimator on its labeled rows. A text pool that asks for tf-idf gets a pipeline
    whose inverse document frequencies are learned from every row of the pool, labeled or not."""
    model = build_estimator(spec, random_state=random_state)
    y = np.asarray(labels)
    if not (featurizer and featurizer.get("tfidf")):
        # float64 so that a model trained here matches one trained in-process on the same data.
        return model.fit(features[labeled_rows].astype(np.float64), y)
    tfidf = TfidfTransformer().fit(features)
    to_dense = FunctionTransformer(dense, accept_sparse=True).fit(features[:1])
    model.fit(dense(tfidf.transform(features[labeled_rows].astype(np.float64))), y)
    # Every step is fitted already; the pipeline only chains them for predict_proba.
    return Pipeline([("tfidf", tfidf), ("dense", to_dense), ("model", model)])


def predict_proba(model, features: np.ndarray) -> np.ndarray:
    parts = [model.predict_proba(features[i:i + SCORING_ROWS].astype(np.float64))
             for i in range(0, len(features), SCORING_ROWS)]
    return np.concatenate(parts) if parts else np.zeros((0, len(model.classes_)))
