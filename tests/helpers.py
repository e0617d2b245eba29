"""A small HTTP client for the tests, and the seed experiment's data."""

from __future__ import annotations

import time

import numpy as np
import requests


class ApiClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def create_pool(self, **body) -> str:
        answer = self.post("/v1/pools", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()["pool_id"]

    def teach(self, pool_id: str, pairs) -> dict:
        answer = self.post(
            f"/v1/pools/{pool_id}/teach", json={"labels": [{"id": i, "label": label} for i, label in pairs]}
        )
        assert answer.status_code == 202, answer.text
        return answer.json()

    def query(self, pool_id: str, **params) -> dict:
        answer = self.get(f"/v1/pools/{pool_id}/query", params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def status(self, pool_id: str) -> dict:
        answer = self.get(f"/v1/pools/{pool_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait_idle(self, pool_id: str, timeout: float = 60) -> dict:
        """Until the rankings reflect every change and no retrain is queued or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(pool_id)
            if (
                status["ranked_version"] == status["version"]
                and not status["retrain"]["queued"]
                and not status["retrain"]["running"]
            ):
                return status
            time.sleep(0.05)
        raise AssertionError(f"pool {pool_id} did not settle: {status}")


def items_of(features: np.ndarray, prefix: str = "i") -> list[dict]:
    return [{"id": f"{prefix}{i}", "features": row.tolist()} for i, row in enumerate(features)]
