"""How good a model is: metrics on held-out evaluation items, or a cross-validated estimate without them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from sieve.core import labels as label_values
from sieve.core.estimators import build_estimator
from sieve.core.fitting import dense, takes_sparse, training_rows

METRICS = ("accuracy", "macro_f1", "log_loss")
"""What every evaluation reports (besides per-class recall)."""

EVAL, AUDIT, CROSS_VALIDATION = "eval", "audit", "cross_validation"
"""Where a model's metrics come from: evaluation items (all of them audit items: AUDIT), or the labeled
items by cross-validation."""

TARGET_METRICS = ("accuracy", "macro_f1")
"""Metrics a stopping target may name: higher is better for both."""

CV_MAX_FOLDS = 5
"""Most folds of the cross-validated estimate."""

CV_MAX_ROWS = 2000
"""Most labeled rows the cross-validated estimate uses (a stratified, seeded sample beyond that), so that
it costs a few fits on small data whatever the number of labels."""

CV_SECONDS = 2.0
"""About how long the estimate may take, judged from the model's own fit time: a slow model is
cross-validated on fewer rows, so that the estimate never costs several times the retrain."""

CV_MIN_ROWS = 50
"""Below this many rows an estimate says too little: with a model too slow for more, there is none."""


def scores(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict:
    """accuracy, macro-F1, per-class recall and log loss of probabilities `proba` (columns: `classes`).

    Labels are the pool's JSON texts. A class the model never saw counts in accuracy, F1 and recall
    (it is never predicted); log loss is then undefined and reported as None.
    """
    y_true, classes = np.asarray(y_true), np.asarray(classes)
    predicted = classes[proba.argmax(axis=1)]
    every = np.union1d(classes, y_true)
    recall = recall_score(y_true, predicted, labels=every, average=None, zero_division=0)
    known = np.isin(y_true, classes).all()
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "macro_f1": float(f1_score(y_true, predicted, labels=every, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y_true, proba, labels=classes)) if known and len(classes) > 1 else None,
        "recall": {str(label_values.decode(c)): float(r) for c, r in zip(every, recall)},
    }


def on_eval_items(proba: np.ndarray, classes, eval_labels, source: str = EVAL) -> dict:
    """Metrics of a model on the pool's evaluation items, given its probabilities for them."""
    return {"source": source, "n": len(eval_labels), **scores(np.asarray(eval_labels), proba, classes)}


def row_budget(n_rows: int, fit_seconds: float) -> int:
    """How many labeled rows the estimate may use, when one fit on `n_rows` rows took `fit_seconds`
    (taking a fit's cost as linear in its rows)."""
    if fit_seconds <= 0:
        return CV_MAX_ROWS
    return int(min(CV_MAX_ROWS, n_rows * CV_SECONDS / (CV_MAX_FOLDS * fit_seconds)))


def cross_validated(
    features: np.ndarray,
    rows: np.ndarray,
    labels: list[str],
    spec: dict,
    seed: int,
    fit_seconds: float = 0.0,
    featurizer: dict | None = None,
) -> dict | None:
    """An estimate of the metrics by stratified cross-validation on the labeled rows; None when a class
    has fewer than two labels (no stratified split exists) or the model is too slow for CV_MIN_ROWS.

    At most CV_MAX_FOLDS folds on at most row_budget() rows (a stratified sample), seeded by the pool:
    the same labels give the same estimate.
    """
    y = np.asarray(labels)
    rows = np.asarray(rows)
    if len(np.unique(y)) < 2 or np.unique(y, return_counts=True)[1].min() < 2:
        return None
    budget = row_budget(len(rows), fit_seconds)
    if budget < max(CV_MIN_ROWS, 2 * len(np.unique(y))):
        return None
    if len(rows) > budget:
        rows, _, y, _ = train_test_split(rows, y, train_size=budget, stratify=y, random_state=seed % 2**32)
        if np.unique(y, return_counts=True)[1].min() < 2:
            return None
    classes, counts = np.unique(y, return_counts=True)
    folds = StratifiedKFold(n_splits=int(min(CV_MAX_FOLDS, counts.min())), shuffle=True, random_state=seed % 2**32)
    # As the pool's model sees its rows: tf-idf weights learned from every row of the pool.
    X, _ = training_rows(features, rows, featurizer)
    estimator = build_estimator(spec, random_state=seed)
    if not takes_sparse(estimator):
        X = dense(X)  # at most CV_MAX_ROWS rows
    proba = cross_val_predict(estimator, X, y, cv=folds, method="predict_proba")
    return {"source": CROSS_VALIDATION, "n": len(y), **scores(y, proba, classes)}
