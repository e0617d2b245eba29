"""On real data, active learning through Sieve ends with a better model than random sampling."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROUNDS, K = 30, 10
STRATEGIES = ("auto", "margin", "least_confidence", "random")


def test_auto_margin_and_least_confidence_beat_random_on_digits_after_30_rounds_of_10(api):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    ids = [f"d{i}" for i in range(len(X_pool))]
    rng = np.random.default_rng(0)
    initial = [int(rng.choice(np.flatnonzero(y_pool == c))) for c in range(10) for _ in range(2)]
    items = [{"id": i, "features": row.tolist()} for i, row in zip(ids, X_pool)]
    labels = [{"id": ids[i], "label": int(y_pool[i])} for i in initial]
    pools = {
        s: api.create_pool(
            items=items,
            labels=labels,
            strategy=s,
            random_state=0,
            model={"type": "logistic_regression", "params": {"max_iter": 1000}},
        )
        for s in STRATEGIES
    }

    for _ in range(ROUNDS):
        for pool in pools.values():
            picked = [item["id"] for item in api.query(pool, k=K, wait=30)["items"]]
            api.teach(pool, [(i, int(y_pool[int(i[1:])])) for i in picked])

    accuracy = {}
    for strategy, pool in pools.items():
        api.wait_idle(pool)
        predicted = api.post(f"/v1/pools/{pool}/predict", json={"features": X_test.tolist()}).json()
        assert predicted["model_version"] == ROUNDS + 1
        accuracy[strategy] = float(np.mean([p["predicted_label"] for p in predicted["predictions"]] == y_test))
    print("accuracy after", 20 + ROUNDS * K, "labels:", accuracy)
    assert accuracy["auto"] > accuracy["random"]
    assert accuracy["margin"] > accuracy["random"]
    assert accuracy["least_confidence"] > accuracy["random"]
