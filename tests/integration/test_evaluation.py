"""Evaluation items and the history of model versions, over real HTTP with real workers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, log_loss, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from tests.helpers import items_of

SEED = 3


def _data(n=300):
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_redundant=0, n_classes=3, random_state=SEED
    )
    # The pool keeps float32 features: the in-process reference must see the same numbers.
    return X.astype(np.float32).astype(np.float64), y


def _labels(rows, y, split="train"):
    return [{"id": f"i{r}", "label": int(y[r]), "split": split} for r in rows]


def test_history_metrics_and_kappa_match_an_in_process_computation(api):
    X, y = _data()
    eval_rows = list(range(200, 300))
    train = [list(range(0, 30)), list(range(30, 50)), list(range(50, 80))]
    pool = api.create_pool(
        items=items_of(X), random_state=SEED, labels=_labels(train[0], y) + _labels(eval_rows, y, "eval")
    )
    api.wait_idle(pool)
    for batch in train[1:]:
        api.teach(pool, [(f"i{r}", int(y[r])) for r in batch])
        api.wait_idle(pool)
    history = api.get(f"/v1/pools/{pool}/history").json()
    assert [v["model_version"] for v in history["versions"]] == [1, 2, 3]
    # The stop set: every row neither labeled nor held out when the first model was fitted (fewer than 1000).
    stop_rows = np.setdiff1d(np.arange(200), train[0])
    previous = None
    for version, entry in zip(range(3), history["versions"]):
        rows = sorted(r for batch in train[: version + 1] for r in batch)
        model = LogisticRegression(random_state=SEED).fit(X[rows], y[rows])
        proba, truth = model.predict_proba(X[eval_rows]), y[eval_rows]
        predicted = model.classes_[proba.argmax(axis=1)]
        metrics = entry["metrics"]
        assert entry["n_labels"] == len(rows) and entry["n_eval"] == 100 and entry["stop_set_size"] == len(stop_rows)
        assert metrics["source"] == "eval" and metrics["n"] == 100
        correct = int(np.sum(predicted == truth))
        low, high = binomtest(correct, 100).proportion_ci(confidence_level=0.9, method="wilson")
        assert entry["estimate"] == pytest.approx(
            {
                "metric": "accuracy",
                "value": correct / 100,
                "low": low,
                "high": high,
                "n": 100,
                "level": 0.9,
                "source": "eval",
                "biased": False,
            }
        )
        assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-9)
        assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-9)
        assert metrics["log_loss"] == pytest.approx(log_loss(truth, proba), abs=1e-4)
        assert metrics["recall"] == pytest.approx(
            dict(zip(["0", "1", "2"], recall_score(truth, predicted, average=None)))
        )
        stop_predictions = model.predict(X[stop_rows])
        if previous is None:
            assert entry["kappa_with_previous"] is None
        else:
            assert entry["kappa_with_previous"] == pytest.approx(cohen_kappa_score(previous, stop_predictions))
        previous = stop_predictions
        assert entry["fit_seconds"] >= 0 and entry["score_seconds"] >= 0 and entry["eval_seconds"] >= 0


def test_without_evaluation_items_the_metrics_are_a_cross_validated_estimate(api):
    X, y = _data()
    rows = list(range(60))
    pool = api.create_pool(items=items_of(X), random_state=SEED, labels=_labels(rows, y))
    api.wait_idle(pool)
    metrics = api.get(f"/v1/pools/{pool}/history").json()["versions"][0]["metrics"]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    proba = cross_val_predict(LogisticRegression(random_state=SEED), X[rows], y[rows], cv=folds, method="predict_proba")
    assert metrics["source"] == "cross_validation" and metrics["n"] == 60
    estimate = api.get(f"/v1/pools/{pool}/history").json()["versions"][0]["estimate"]
    assert estimate["source"] == "cross_validation" and estimate["biased"] is True and estimate["n"] == 60
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y[rows], proba.argmax(axis=1)), abs=1e-9)
    assert metrics["log_loss"] == pytest.approx(log_loss(y[rows], proba), abs=1e-4)


def test_a_class_with_a_single_label_and_no_evaluation_items_gives_no_metrics(api):
    X, y = _data()
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "a"}, {"id": "i1", "label": "b"}])
    api.wait_idle(pool)
    (entry,) = api.get(f"/v1/pools/{pool}/history").json()["versions"]
    assert entry["metrics"] is None and entry["n_labels"] == 2


def test_evaluation_items_are_never_queried_nor_trained_on(api):
    X, y = _data(120)
    eval_rows = list(range(100, 120))
    pool = api.create_pool(items=items_of(X), random_state=SEED, labels=_labels(range(10), y))
    # Evaluation labels on /teach, deliberately wrong: a model trained on them would differ.
    api.post(
        f"/v1/pools/{pool}/teach",
        json={"labels": [{"id": f"i{r}", "label": int((y[r] + 1) % 3), "split": "eval"} for r in eval_rows]},
    )
    status = api.wait_idle(pool)
    assert status["n_labeled"] == 10 and status["n_eval"] == 20 and status["n_unlabeled"] == 90
    assert status["labels_version"] == 1, "evaluation labels change no model"
    served = {item["id"] for item in api.query(pool, k=1000, lease_seconds=0)["items"]}
    assert served == {f"i{r}" for r in range(10, 100)}
    model = LogisticRegression(random_state=SEED).fit(X[:10], y[:10])
    predicted = api.post(f"/v1/pools/{pool}/predict", json={"ids": [f"i{r}" for r in eval_rows]}).json()
    sieve_proba = np.array([[p["probabilities"][str(c)] for c in model.classes_] for p in predicted["predictions"]])
    assert np.allclose(sieve_proba, model.predict_proba(X[eval_rows]), atol=1e-5)
    entry = api.get(f"/v1/pools/{pool}/history").json()["versions"][-1]
    assert entry["n_eval"] == 20 and entry["metrics"]["source"] == "eval"


def test_an_item_stays_in_the_split_it_was_first_labeled_in(api):
    X, y = _data(40)
    pool = api.create_pool(items=items_of(X), labels=_labels([0], y) + _labels([1], y, "eval"))
    for body, field in (
        ({"id": "i0", "label": 1, "split": "eval"}, "labels[0].split"),
        ({"id": "i1", "label": 1}, "labels[0].split"),
    ):
        answer = api.post(f"/v1/pools/{pool}/teach", json={"labels": [body]})
        assert answer.status_code == 409 and answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["field"] == field
    assert api.status(pool)["labels_version"] == 1
