"""A pool's current model as /predict reads it, and the stored rows of the items it is asked about."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

from sieve.storage.features import SPARSE, read_selected_rows, read_selected_sparse_rows, stored_chunk_rows
from sieve.storage.keys import PoolKeys
from sieve.storage.replies import int_or_none, pool_not_found, text


@dataclass(frozen=True)
class ServedModel:
    pool_id: str
    dim: int | None
    """None while a pool has no items (a Label Studio vector pool before its first task)."""
    model_version: int | None
    blob: bytes | None
    """The signed model; None before the first one."""
    featurizer: dict | None
    """A text pool's featurizer; None for a pool of feature vectors."""
    sparse: bool
    """The pool's rows are stored sparse (a text pool; older text pools kept dense rows)."""
    n_items: int
    chunk_rows: bytes | None


class ServedModels:
    def __init__(self, redis: Redis):
        self.redis = redis

    def current(self, pool_id: str) -> ServedModel:
        keys = PoolKeys(pool_id)
        # The model and its version are read together: a refresh may replace both at any moment.
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(keys.meta, ["dim", "model_version", "featurizer", "n_items", "chunk_rows", "layout"])
        pipe.get(keys.model)
        (dim, model_version, featurizer, n_items, chunk_rows, layout), blob = pipe.execute()
        if dim is None:
            raise pool_not_found(pool_id)
        return ServedModel(
            pool_id=pool_id,
            dim=int_or_none(dim),
            model_version=int_or_none(model_version) or None,
            blob=blob,
            featurizer=json.loads(featurizer) if featurizer else None,
            sparse=layout is not None and text(layout) == SPARSE,
            n_items=int(n_items),
            chunk_rows=chunk_rows,
        )

    def rows(self, model: ServedModel, rows: list[int]):
        """The stored feature rows at these positions, as the pool keeps them (CSR for sparse rows)."""
        read = read_selected_sparse_rows if model.sparse else read_selected_rows
        return read(
            self.redis,
            PoolKeys(model.pool_id),
            rows,
            model.dim,
            stored_chunk_rows(model.chunk_rows, model.n_items, model.dim),
        )
