"""A text pool costs memory in proportion to its text, in Redis and in the API, not texts x columns."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.core.selection import ALL_STRATEGIES
from sieve.storage.keys import PoolKeys
from tests.helpers import api_processes, peak_rss_growth_mb

WORDS = [f"word{i}" for i in range(5000)]
MB = 1024 * 1024


def _texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=words)) for _ in range(n)]


def _items(texts, prefix="t"):
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(texts)]


def _pool_bytes(redis, pool: str) -> int:
    return sum(redis.memory_usage(key, samples=0) or 0 for key in redis.scan_iter(PoolKeys(pool).every_key))


def test_10000_short_texts_at_8192_columns_take_a_few_megabytes_of_redis(api, redis):
    texts = _texts(10_000, 6, seed=0)
    pool = api.create_pool(items=_items(texts), featurizer={"n_features": 8192})
    # Dense float32 rows would take 10,000 x 8192 x 4 bytes = 312 MiB; the text itself is 0.5 MB.
    assert _pool_bytes(redis, pool) < 20 * MB
    assert api.status(pool)["n_items"] == 10_000


def test_the_api_does_not_grow_by_gigabytes_on_a_large_text_create_or_predict(api, live_url):
    pids = api_processes(live_url)
    big = _texts(12_000, 12, seed=1)  # 1.2 MB of text
    growth, created = peak_rss_growth_mb(
        pids, lambda: api.post("/v1/pools", json={"items": _items(big), "featurizer": {"n_features": 8192}})
    )
    assert created.status_code == 201, created.text
    assert growth < 300, f"the API grew by {growth:.0f} MB on a 1.2 MB create"
    pool = created.json()["pool_id"]
    api.teach(pool, [(f"t{i}", "ab"[i % 2]) for i in range(20)])
    assert api.wait_idle(pool, timeout=120)["model_version"] == 1
    texts = [t[:5] for t in _texts(10_000, 1, seed=2)]  # 50 KB of text
    growth, predicted = peak_rss_growth_mb(pids, lambda: api.post(f"/v1/pools/{pool}/predict", json={"texts": texts}))
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
