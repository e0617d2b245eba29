"""A small HTTP client for the tests, and the seed experiment's data."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import psutil
import requests

from sieve.client import Client


class ApiClient:
    """sieve.client.Client for the tests' typed calls, and raw requests for tests that look at answers.

    It never retries (a test sees every failure as it happened), so it sends no Idempotency-Key of its own.
    A typed call raises sieve.client.ApiError on any other status than the endpoint's documented one."""

    def __init__(self, base_url: str, api_key: str | None = None):
        self.base_url = base_url
        self.client = Client(base_url, api_key=api_key, retries=0)
        self.session = self.client.session

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
        return self.client.create_pool(**body)["pool_id"]

    def teach(self, pool_id: str, pairs) -> dict:
        return self.client.teach(pool_id, pairs)

    def query(self, pool_id: str, **params) -> dict:
        # A 202 fails the test, as any answer but 200 does: tests that expect one ask with get().
        return self.client.query(pool_id, **params, pending_timeout=0)

    def status(self, pool_id: str) -> dict:
        return self.client.status(pool_id)

    def wait_idle(self, pool_id: str, timeout: float = 60) -> dict:
        """Until the rankings reflect every change and no retrain is queued or running."""
        return self.client.wait_idle(pool_id, timeout)


def items_of(features: np.ndarray, prefix: str = "i") -> list[dict]:
    return [{"id": f"{prefix}{i}", "features": row.tolist()} for i, row in enumerate(features)]


def status_kb(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def api_processes(live_url: str) -> list[int]:
    """The gunicorn processes serving live_url: the `sieve api` this test session started, and its workers."""
    port = str(urlparse(live_url).port)
    for process in psutil.Process().children(recursive=True):
        if "api" in process.cmdline() and port in process.cmdline():
            return [process.pid, *(child.pid for child in process.children(recursive=True))]
    raise AssertionError(f"no API process serves {live_url}")


def peak_rss_growth_mb(pids: list[int], action):
    """The most any of these processes' RSS grew while `action` ran (peak RSS reset first), and its answer."""
    before = {}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before[pid] = status_kb(pid, "VmRSS")
    answer = action()
    return max(status_kb(pid, "VmHWM") - before[pid] for pid in pids) / 1024, answer
