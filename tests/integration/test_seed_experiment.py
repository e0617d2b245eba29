"""The seed experiment over HTTP: Sieve picks exactly what the in-process loop picks, and learns as well."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sieve.seed_experiment import seed_split

ROUNDS = 11
K = 20


def test_seed_experiment_over_http_matches_the_in_process_loop(api):
    X_lab, y_lab, X_unl, y_unl, X_test, y_test = seed_split()
    X_pool = np.vstack([X_lab, X_unl])
    y_pool = np.concatenate([y_lab, y_unl])
    ids = [f"x{i}" for i in range(len(X_pool))]
    pool = api.create_pool(
        items=[{"id": i, "features": row.tolist()} for i, row in zip(ids, X_pool)],
        labels=[{"id": ids[i], "label": int(y_pool[i])} for i in range(len(X_lab))],
        model={"type": "logistic_regression", "params": {}},
    )

    labeled = list(range(len(X_lab)))
    for round_ in range(ROUNDS):
        # In process, as the starter code did it.
        model = LogisticRegression().fit(X_pool[labeled], y_pool[labeled])
        unlabeled = np.setdiff1d(np.arange(len(X_pool)), labeled)
        uncertainty = 1 - model.predict_proba(X_pool[unlabeled]).max(axis=1)
        expected = unlabeled[np.argsort(uncertainty)[-K:]]

        answer = api.query(pool, k=K, strategy="least_confidence", wait=30)
        assert answer["ranked_labels_version"] == answer["labels_version"]
        picked = [int(item["id"][1:]) for item in answer["items"]]
        assert sorted(picked) == sorted(expected.tolist()), f"round {round_}"

        in_process_accuracy = model.score(X_test, y_test)
        predicted = api.post(f"/v1/pools/{pool}/predict", json={"features": X_test.tolist()}).json()
        sieve_accuracy = np.mean([p["predicted_label"] for p in predicted["predictions"]] == y_test)
        print(
            f"round {round_:2d}: {len(labeled):3d} labels, accuracy in process {in_process_accuracy:.3f}, "
            f"Sieve {sieve_accuracy:.3f}"
        )
        assert sieve_accuracy == pytest.approx(in_process_accuracy, abs=1e-9)

        api.teach(pool, [(ids[i], int(y_pool[i])) for i in picked])
        labeled += picked
