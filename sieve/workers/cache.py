"""Keeps pools' features resident in a worker process; items are append-only, so only new rows are read."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from redis import Redis

from ..storage.features import read_rows
from ..storage.keys import PoolKeys


class FeatureCache:
    """A least-recently-used map from pool id to its float32 feature rows, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()

    def rows(self, redis: Redis, pool_id: str, n_items: int, dim: int, chunk_rows: int) -> np.ndarray:
        keys = PoolKeys(pool_id)
        cached = self._arrays.pop(pool_id, None)
        if cached is None or cached.shape[1] != dim or len(cached) > n_items:
            cached = read_rows(redis, keys, 0, n_items, dim, chunk_rows)
        elif len(cached) < n_items:
            cached = np.concatenate([cached, read_rows(redis, keys, len(cached), n_items, dim, chunk_rows)])
        if cached.nbytes <= self.max_bytes:
            self._arrays[pool_id] = cached
            self._evict()
        return cached

    def _evict(self) -> None:
        while sum(a.nbytes for a in self._arrays.values()) > self.max_bytes:
            self._arrays.popitem(last=False)
