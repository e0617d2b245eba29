"""One refresh of a pool, as pure computation: fit on the labeled rows, score and rank the rest."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from .estimators import build_estimator
from .strategies import STRATEGIES, random_scores, ranking, scores

SCORING_ROWS = 65_536
"""Rows scored per predict_proba call, so memory stays flat on large pools."""


@dataclass
class Rankings:
    """Every strategy's order of the unlabeled rows (most informative first) and their scores."""

    cold_start: bool
    model: object | None
    classes: list[str]
    proba: np.ndarray | None
    orders: dict[str, tuple[np.ndarray, np.ndarray]]


def unlabeled_rows(n_items: int, labeled_rows: np.ndarray) -> np.ndarray:
    mask = np.ones(n_items, dtype=bool)
    mask[labeled_rows[labeled_rows < n_items]] = False
    return np.flatnonzero(mask)


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


def _order(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = ranking(values)
    return rows[order], values[order]


def rank_pool(features: np.ndarray, labeled_rows: np.ndarray, labels: list[str], spec: dict,
              seed: int, version: int, model=None, featurizer: dict | None = None) -> Rankings:
    """Fits (unless a model for these labels is given) and ranks every unlabeled row per strategy.

    With fewer than two classes there is nothing to fit: every strategy falls back to a seeded
    random order, and the result says it is a cold start.
    """
    n_items = len(features)
    rows = unlabeled_rows(n_items, labeled_rows)
    # Seeded by the pool and its version, so a re-run job produces the very same order.
    rng = np.random.default_rng([seed, version])
    orders = {"random": _order(rows, random_scores(len(rows), rng))}
    if len(set(labels)) < 2:
        return Rankings(cold_start=True, model=None, classes=[], proba=None, orders=orders)
    if model is None:
        model = fit(features, labeled_rows, labels, spec, random_state=seed, featurizer=featurizer)
    proba = predict_proba(model, features)
    for strategy in STRATEGIES:
        if strategy != "random":
            orders[strategy] = _order(rows, scores(strategy, proba[rows]))
    return Rankings(cold_start=False, model=model, classes=[str(c) for c in model.classes_],
                    proba=proba, orders=orders)
