"""The same loop against a live Sieve: one pool per seed and strategy, queried and taught over HTTP."""

from __future__ import annotations

import numpy as np

from sieve import limits
from sieve.client import Client
from sieve.simulate.protocol import Setup
from sieve.simulate.trace import Trace, batch_size_now

MODEL_WAIT_SECONDS = 300.0
"""How long to wait for the worker's model to reflect the labels just taught."""


def _ids(rows) -> list[str]:
    return [f"r{int(r)}" for r in rows]


def _predict(client: Client, pool: str, expected_version: int, key: str, rows: list) -> list:
    """Predicted labels of `rows` ("features" or "ids") by the model at `expected_version`, in calls of at
    most MAX_PREDICT_ROWS rows."""
    labels = []
    for start in range(0, len(rows), limits.MAX_PREDICT_ROWS):
        answer = client.predict(pool, **{key: rows[start : start + limits.MAX_PREDICT_ROWS]})
        if answer["model_version"] != expected_version:
            raise RuntimeError(f"pool {pool}: model version {answer['model_version']}, expected {expected_version}")
        labels.extend(p["predicted_label"] for p in answer["predictions"])
    return labels


def run_remote(client: Client, setup: Setup, strategy: str, spec: dict, batch_size: int, budget: int) -> Trace:
    n_pool = len(setup.y_pool)
    if n_pool > limits.MAX_ITEMS_PER_CALL:
        raise ValueError(f"the pool has {n_pool} rows; one create call carries at most {limits.MAX_ITEMS_PER_CALL}")
    pool = client.create_pool(
        items=[{"id": i, "features": row} for i, row in zip(_ids(range(n_pool)), setup.X_pool)],
        labels=[(i, int(setup.y_pool[r])) for i, r in zip(_ids(setup.initial), setup.initial)],
        name=f"simulate {strategy} seed {setup.seed}",
        model=spec,
        strategy=strategy,
        random_state=setup.seed,
    )["pool_id"]
    try:
        trace = Trace()
        n_labels, labels_version = len(setup.initial), 1
        test_rows, stop_ids = setup.X_test.tolist(), _ids(setup.stop_rows)
        while True:
            client.wait_for_model(pool, labels_version, timeout=MODEL_WAIT_SECONDS)
            predicted = _predict(client, pool, labels_version, "features", test_rows)
            stop = _predict(client, pool, labels_version, "ids", stop_ids)
            trace.record(n_labels, np.mean(np.asarray(predicted) == setup.y_test), np.asarray(stop))
            k = batch_size_now(n_labels, n_pool - n_labels, batch_size, budget)
            if k == 0:
                return trace
            answer = client.query(pool, k, strategy=strategy, wait=limits.MAX_QUERY_WAIT_SECONDS, lease_seconds=0)
            if answer["ranked_labels_version"] != labels_version:
                raise RuntimeError(f"pool {pool}: the ranking is behind the labels: {answer}")
            picked = [int(item["id"][1:]) for item in answer["items"]]
            trace.picked(picked)
            client.teach(pool, [(f"r{r}", int(setup.y_pool[r])) for r in picked])
            n_labels += len(picked)
            labels_version += 1
    finally:
        client.delete_pool(pool)
