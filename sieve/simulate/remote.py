"""The same loop against a live Sieve: one pool per seed and strategy, queried and taught over HTTP."""

from __future__ import annotations

import time

import numpy as np
import requests

from sieve import limits
from sieve.simulate.protocol import Setup
from sieve.simulate.trace import Trace, batch_size_now

MODEL_WAIT_SECONDS = 300.0
"""How long to wait for the worker's model to reflect the labels just taught."""


class SieveClient:
    def __init__(self, url: str, api_key: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        answer = self.session.request(method, self.url + path, timeout=120, **kwargs)
        if not answer.ok:
            raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json() if answer.content else {}


def _ids(rows) -> list[str]:
    return [f"r{int(r)}" for r in rows]


def _predict(client: SieveClient, pool: str, expected_version: int, key: str, rows: list) -> list:
    """Predicted labels of `rows` ("features" or "ids") by the model at `expected_version`, in calls of at
    most MAX_PREDICT_ROWS rows."""
    labels = []
    for start in range(0, len(rows), limits.MAX_PREDICT_ROWS):
        answer = client.call(
            "POST", f"/v1/pools/{pool}/predict", json={key: rows[start : start + limits.MAX_PREDICT_ROWS]}
        )
        if answer["model_version"] != expected_version:
            raise RuntimeError(f"pool {pool}: model version {answer['model_version']}, expected {expected_version}")
        labels.extend(p["predicted_label"] for p in answer["predictions"])
    return labels


def _await_model(client: SieveClient, pool: str, labels_version: int) -> None:
    deadline = time.monotonic() + MODEL_WAIT_SECONDS
    while time.monotonic() < deadline:
        status = client.call("GET", f"/v1/pools/{pool}")
        if status["model_version"] == labels_version:
            return
        time.sleep(0.05)
    raise RuntimeError(f"pool {pool}: no model at labels version {labels_version} after {MODEL_WAIT_SECONDS} s")


def run_remote(client: SieveClient, setup: Setup, strategy: str, spec: dict, batch_size: int, budget: int) -> Trace:
    n_pool = len(setup.y_pool)
    if n_pool > limits.MAX_ITEMS_PER_CALL:
        raise ValueError(f"the pool has {n_pool} rows; one create call carries at most {limits.MAX_ITEMS_PER_CALL}")
    pool = client.call(
        "POST",
        "/v1/pools",
        json={
            "name": f"simulate {strategy} seed {setup.seed}",
            "model": spec,
            "strategy": strategy,
            "random_state": setup.seed,
            "items": [{"id": i, "features": row} for i, row in zip(_ids(range(n_pool)), setup.X_pool.tolist())],
            "labels": [{"id": i, "label": int(setup.y_pool[r])} for i, r in zip(_ids(setup.initial), setup.initial)],
        },
    )["pool_id"]
    try:
        trace = Trace()
        n_labels, labels_version = len(setup.initial), 1
        test_rows, stop_ids = setup.X_test.tolist(), _ids(setup.stop_rows)
        while True:
            _await_model(client, pool, labels_version)
            predicted = _predict(client, pool, labels_version, "features", test_rows)
            stop = _predict(client, pool, labels_version, "ids", stop_ids)
            trace.record(n_labels, np.mean(np.asarray(predicted) == setup.y_test), np.asarray(stop))
            k = batch_size_now(n_labels, n_pool - n_labels, batch_size, budget)
            if k == 0:
                return trace
            answer = client.call(
                "GET",
                f"/v1/pools/{pool}/query",
                params={"k": k, "strategy": strategy, "wait": limits.MAX_QUERY_WAIT_SECONDS, "lease_seconds": 0},
            )
            if answer["ranked_labels_version"] != labels_version:
                raise RuntimeError(f"pool {pool}: the ranking is behind the labels: {answer}")
            picked = [int(item["id"][1:]) for item in answer["items"]]
            trace.picked(picked)
            client.call(
                "POST",
                f"/v1/pools/{pool}/teach",
                json={"labels": [{"id": f"r{r}", "label": int(setup.y_pool[r])} for r in picked]},
            )
            n_labels += len(picked)
            labels_version += 1
    finally:
        client.call("DELETE", f"/v1/pools/{pool}")
