"""Pools and rows for the storage tests, and a snapshot of the whole database."""

from __future__ import annotations

import numpy as np
from redis import Redis

from sieve.storage.pool_store import PoolConfig, PoolStore

PENDING_TTL_MS = 60_000


def config(**changes) -> PoolConfig:
    fields = dict(name="p", model={"name": "logistic_regression"}, strategy="margin", random_state=7, classes=None)
    fields.update(changes)
    return PoolConfig(**fields)


def item_ids(n: int, start: int = 0) -> list[str]:
    return [f"i{k}" for k in range(start, start + n)]


def features(n: int, dim: int = 3, start: int = 0) -> np.ndarray:
    """Rows whose values tell them apart: row r holds r, r + 0.25, r + 0.5..."""
    return (np.arange(start, start + n, dtype=np.float32)[:, None] + 0.25 * np.arange(dim, dtype=np.float32)).astype(
        np.float32
    )


def snapshot(redis: Redis) -> dict:
    """Every key of the database with its serialized value: equal snapshots mean nothing was written."""
    return {key: redis.dump(key) for key in sorted(redis.scan_iter(count=1000))}


def make_pool(pools: PoolStore, n: int = 6, dim: int = 3, labels: dict | None = None, **changes) -> str:
    """A pool of n items i0.. with distinct rows, and the given training labels (id -> label)."""
    labels = labels or {}
    pool_id, _ = pools.create(config(**changes), item_ids(n), features(n, dim), list(labels), list(labels.values()))
    return pool_id
