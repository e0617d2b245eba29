"""Fitting a pool's model on its labeled rows and scoring rows with it."""
from __future__ import annotations

import numpy as np

from .estimators import build_estimator

SCORING_ROWS = 65_536
"""Rows scored per predict_proba call, so memory stays flat on large pools."""


def fit(features: np.ndarray, labeled_rows: np.ndarray, labels: list[str], spec: dict, random_state: int):
    # float64 so that a model trained here matches one trained in-process on the same data.
    model = build_estimator(spec, random_state=random_state)
    return model.fit(features[labeled_rows].astype(np.float64), np.asarray(labels))


def predict_proba(model, features: np.ndarray) -> np.ndarray:
    parts = [model.predict_proba(features[i:i + SCORING_ROWS].astype(np.float64))
             for i in range(0, len(features), SCORING_ROWS)]
    return np.concatenate(parts) if parts else np.zeros((0, len(model.classes_)))
