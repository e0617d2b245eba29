"""Evaluation metrics against scikit-learn's, and the cross-validated estimate's bounds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, f1_score, log_loss

from sieve.core import evaluation
from sieve.core.evaluation import cross_validated, on_eval_items, scores

SPEC = {"type": "logistic_regression", "params": {}}


def test_scores_equal_scikit_learns_on_json_label_texts():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=40)
    classes = np.array(['"a"', '"b"', '"c"'])
    truth = classes[rng.integers(0, 3, size=40)]
    result = scores(truth, proba, classes)
    predicted = classes[proba.argmax(axis=1)]
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert result["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert result["log_loss"] == pytest.approx(log_loss(truth, proba, labels=classes))
    assert set(result["recall"]) == {"a", "b", "c"}


def test_a_class_the_model_never_saw_counts_as_missed_and_leaves_log_loss_undefined():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    result = on_eval_items(proba, np.array(["0", "1"]), ["0", "1", "2"])
    assert result["source"] == "eval" and result["n"] == 3
    assert result["accuracy"] == pytest.approx(2 / 3) and result["log_loss"] is None
    assert result["recall"] == {"0": 1.0, "1": 1.0, "2": 0.0}


def test_cross_validation_needs_two_labels_of_every_class():
    X = np.random.default_rng(1).normal(size=(5, 2))
    assert cross_validated(X, np.arange(5), ["0", "0", "1", "1", "2"], SPEC, seed=0) is None
    assert cross_validated(X, np.arange(4), ["0", "0", "0", "0"], SPEC, seed=0) is None
    estimate = cross_validated(X, np.arange(4), ["0", "0", "1", "1"], SPEC, seed=0)
    assert estimate["source"] == "cross_validation" and estimate["n"] == 4


def test_cross_validation_uses_a_bounded_seeded_sample_of_large_labeled_sets(monkeypatch):
    X, y = make_classification(n_samples=600, n_features=5, random_state=0)
    labels = [str(v) for v in y]
    monkeypatch.setattr(evaluation, "CV_MAX_ROWS", 200)
    first = cross_validated(X, np.arange(600), labels, SPEC, seed=4)
    assert first["n"] == 200 and first == cross_validated(X, np.arange(600), labels, SPEC, seed=4)


def test_a_slow_model_is_cross_validated_on_fewer_rows_and_a_very_slow_one_not_at_all():
    X, y = make_classification(n_samples=600, n_features=5, random_state=0)
    labels = [str(v) for v in y]
    # One fit on 600 rows took 2.4 s: 5 folds within CV_SECONDS leave 600 * 2 / (5 * 2.4) = 100 rows.
    assert evaluation.row_budget(600, 2.4) == 100
    assert cross_validated(X, np.arange(600), labels, SPEC, seed=4, fit_seconds=2.4)["n"] == 100
    assert cross_validated(X, np.arange(600), labels, SPEC, seed=4, fit_seconds=60.0) is None
