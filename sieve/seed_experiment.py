"""The seed experiment's data: a 3-class problem of 1000 items, and its split into labeled, unlabeled and test."""

from __future__ import annotations

import numpy as np


def seed_data() -> tuple[np.ndarray, np.ndarray]:
    """The seed experiment's 1000 items of a 3-class problem (make_classification, random_state 42)."""
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=1000, n_features=20, n_informative=5, n_redundant=5, n_classes=3, random_state=42
    )


def seed_split() -> tuple[np.ndarray, ...]:
    """The seed experiment: 40 labeled, 760 unlabeled and 200 test items of a 3-class problem.

    Returns X_labeled, y_labeled, X_unlabeled, y_unlabeled, X_test, y_test.
    """
    from sklearn.model_selection import train_test_split

    X, y = seed_data()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    X_lab, X_unl, y_lab, y_unl = train_test_split(X_train, y_train, test_size=0.95, random_state=42)
    return X_lab, y_lab, X_unl, y_unl, X_test, y_test
