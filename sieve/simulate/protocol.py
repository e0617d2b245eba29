"""One seed's experiment: the split, the initial labels and the stop set that every strategy shares."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sieve.core import fitting
from sieve.simulate.datasets import Dataset

TEST_SHARE = 0.2
STOP_SET_SIZE = 1000
"""Pool rows on which consecutive models' predictions are compared by the stopping rule."""


@dataclass(frozen=True)
class Setup:
    """What one seed fixes. Features are float32, as a Sieve pool stores them, so that a model fitted
    here is the model a worker fits on the same rows."""

    seed: int
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    initial: np.ndarray
    stop_rows: np.ndarray


def prepare(data: Dataset, seed: int, init_per_class: int, test_share: float = TEST_SHARE) -> Setup:
    """A stratified pool/test split (80/20 by default), standardized with the pool's statistics, and
    `init_per_class` initial labels per class drawn with the seed."""
    X_pool, X_test, y_pool, y_test = train_test_split(
        data.X, data.y, test_size=test_share, stratify=data.y, random_state=seed
    )
    scaler = StandardScaler().fit(X_pool)
    rng = np.random.default_rng(seed)
    initial = []
    for code in np.unique(y_pool):
        members = np.flatnonzero(y_pool == code)
        initial.extend(rng.choice(members, size=min(init_per_class, len(members)), replace=False).tolist())
    stop_rows = np.sort(rng.choice(len(y_pool), size=min(STOP_SET_SIZE, len(y_pool)), replace=False))
    return Setup(
        seed=seed,
        X_pool=scaler.transform(X_pool).astype(np.float32),
        y_pool=y_pool,
        X_test=scaler.transform(X_test).astype(np.float32),
        y_test=y_test,
        initial=np.sort(np.asarray(initial, dtype=np.int64)),
        stop_rows=stop_rows,
    )


def label_texts(codes) -> list[str]:
    """Labels as a worker sees them (the JSON text Redis stores), so models fit on the same classes_."""
    return [json.dumps(int(c)) for c in codes]


def decode(model, proba: np.ndarray) -> np.ndarray:
    """Predicted label codes from a model fitted on label_texts()."""
    return np.asarray(model.classes_)[proba.argmax(axis=1)].astype(np.int64)


def fit(setup: Setup, rows: np.ndarray, spec: dict):
    """The pool's model on these labeled rows, fitted as a worker does (sorted rows, the seed, float64)."""
    rows = np.sort(rows)
    return fitting.fit(setup.X_pool, rows, label_texts(setup.y_pool[rows]), spec, random_state=setup.seed)


def full_pool_accuracy(setup: Setup, spec: dict) -> float:
    """Test accuracy of the model fitted on every pool row: the ceiling the curves are measured against."""
    model = fit(setup, np.arange(len(setup.y_pool)), spec)
    return float(np.mean(decode(model, fitting.predict_proba(model, setup.X_test)) == setup.y_test))
