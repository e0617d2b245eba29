"""A text pool costs memory in proportion to its text, in Redis and in the API, not texts x columns."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import psutil
import pytest

from sieve.core.selection import ALL_STRATEGIES
from sieve.storage.keys import PoolKeys

WORDS = [f"word{i}" for i in range(5000)]
MB = 1024 * 1024


def _texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=words)) for _ in range(n)]


def _items(texts, prefix="t"):
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(texts)]


def _status_kb(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def _api_processes(live_url: str) -> list[int]:
    """The gunicorn processes serving live_url: the `sieve api` this test session started, and its workers."""
    port = str(urlparse(live_url).port)
    for process in psutil.Process().children(recursive=True):
        if "api" in process.cmdline() and port in process.cmdline():
            return [process.pid, *(child.pid for child in process.children(recursive=True))]
    raise AssertionError(f"no API process serves {live_url}")


def _peak_growth_mb(pids: list[int], action):
    """The most any of these processes' RSS grew while `action` ran (peak RSS reset first), and its answer."""
    before = {}
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before[pid] = _status_kb(pid, "VmRSS")
    answer = action()
    return max(_status_kb(pid, "VmHWM") - before[pid] for pid in pids) / 1024, answer


def _pool_bytes(redis, pool: str) -> int:
    return sum(redis.memory_usage(key, samples=0) or 0 for key in redis.scan_iter(PoolKeys(pool).every_key))


def test_10000_short_texts_at_8192_columns_take_a_few_megabytes_of_redis(api, redis):
    texts = _texts(10_000, 6, seed=0)
    pool = api.create_pool(items=_items(texts), featurizer={"n_features": 8192})
    # Dense float32 rows would take 10,000 x 8192 x 4 bytes = 312 MiB; the text itself is 0.5 MB.
    assert _pool_bytes(redis, pool) < 20 * MB
    assert api.status(pool)["n_items"] == 10_000


def test_the_api_does_not_grow_by_gigabytes_on_a_large_text_create_or_predict(api, live_url):
    pids = _api_processes(live_url)
    big = _texts(12_000, 12, seed=1)  # 1.2 MB of text
    growth, created = _peak_growth_mb(
        pids, lambda: api.post("/v1/pools", json={"items": _items(big), "featurizer": {"n_features": 8192}})
    )
    assert created.status_code == 201, created.text
    assert growth < 300, f"the API grew by {growth:.0f} MB on a 1.2 MB create"
    pool = created.json()["pool_id"]
    api.teach(pool, [(f"t{i}", "ab"[i % 2]) for i in range(20)])
    assert api.wait_idle(pool, timeout=120)["model_version"] == 1
    texts = [t[:5] for t in _texts(10_000, 1, seed=2)]  # 50 KB of text
    growth, predicted = _peak_growth_mb(pids, lambda: api.post(f"/v1/pools/{pool}/predict", json={"texts": texts}))
    assert predicted.status_code == 200, predicted.text
    assert len(predicted.json()["predictions"]) == 10_000
    assert growth < 300, f"the API grew by {growth:.0f} MB on a 50 KB predict"


@pytest.mark.parametrize("model", ["logistic_regression", "gaussian_nb"])
def test_every_strategy_ranks_a_text_pool(api, model):
    texts = _texts(400, 5, seed=3)
    pool = api.create_pool(
        items=_items(texts),
        featurizer={"n_features": 8192},
        model={"type": model},
        labels=[{"id": f"t{i}", "label": "ab"[i % 2]} for i in range(6)],
    )
    api.wait_idle(pool)
    for strategy in ALL_STRATEGIES:
        answer = api.query(pool, k=5, strategy=strategy, lease_seconds=0, wait=20)
        got = [item["id"] for item in answer["items"]]
        assert answer["cold_start"] is False and len(set(got)) == 5, (strategy, answer)
        assert not {f"t{i}" for i in range(6)} & set(got), strategy
    assert api.status(pool)["retrain"]["last_error"] is None
