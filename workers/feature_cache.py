"""Keeps pools' features resident in a worker process; items are append-only, so only new rows are read."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from redis import Redis
from scipy import sparse

from sieve.storage.features import DTYPE, read_rows, read_sparse_rows
from sieve.storage.keys import PoolKeys


def nbytes(rows) -> int:
    if sparse.issparse(rows):
        return rows.data.nbytes + rows.indices.nbytes + rows.indptr.nbytes
    return rows.nbytes


class FeatureCache:
    """A least-recently-used map from pool id to its feature rows (float32; CSR for a text pool stored
    sparse), bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._arrays: OrderedDict[str, np.ndarray | sparse.csr_matrix] = OrderedDict()

    def rows(self, redis: Redis, pool_id: str, n_items: int, dim: int, chunk_rows: int, stored_sparse: bool = False):
        keys = PoolKeys(pool_id)
        read = read_sparse_rows if stored_sparse else read_rows
        cached = self._arrays.pop(pool_id, None)
        if (
            cached is None
            or cached.shape[1] != dim
            or cached.shape[0] > n_items
            or sparse.issparse(cached) != stored_sparse
        ):
            cached = read(redis, keys, 0, n_items, dim, chunk_rows)
        elif cached.shape[0] < n_items:
            more = read(redis, keys, cached.shape[0], n_items, dim, chunk_rows)
            cached = sparse.vstack([cached, more], format="csr") if stored_sparse else np.concatenate([cached, more])
        if nbytes(cached) <= self.max_bytes:
            self._arrays[pool_id] = cached
            self._evict()
        return cached

    def row_range(
        self,
        redis: Redis,
        pool_id: str,
        first: int,
        stop: int,
        n_items: int,
        dim: int,
        chunk_rows: int,
        stored_sparse: bool = False,
    ):
        """Rows [first, stop) of a pool of n_items rows (a shard of a sharded refresh). A pool whose dense rows fit
        the cache is read whole once and kept, as a refresh keeps it: the next refreshes read only new rows,
        whichever shard they give this worker. Otherwise only the range is read (and not kept)."""
        cached = self._arrays.get(pool_id)
        covered = cached is not None and cached.shape[0] >= stop and cached.shape[1] == dim
        if covered and sparse.issparse(cached) == stored_sparse:
            self._arrays.move_to_end(pool_id)
            return cached[first:stop]
        if not stored_sparse and n_items * dim * DTYPE.itemsize <= self.max_bytes:
            return self.rows(redis, pool_id, n_items, dim, chunk_rows)[first:stop]
        read = read_sparse_rows if stored_sparse else read_rows
        return read(redis, PoolKeys(pool_id), first, stop, dim, chunk_rows)

    def _evict(self) -> None:
        while sum(nbytes(a) for a in self._arrays.values()) > self.max_bytes:
            self._arrays.popitem(last=False)
