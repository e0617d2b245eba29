"""Pools and rows for the storage tests, and a snapshot of the whole database."""

from __future__ import annotations

import numpy as np
from redis import Redis

from sieve.core.history import Review
from sieve.storage.keys import PoolKeys
from sieve.storage.pool_store import PoolConfig, PoolStore
from sieve.storage.refresh import Published, RefreshStore
from sieve.storage.replies import decode_hash

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


def snapshot(redis: Redis, match: str | None = None) -> dict:
    """Every key of the database (or those `match` matches) with its value, read by type (a dump's field
    order is not canonical): equal snapshots mean nothing was written."""
    read = {
        b"string": redis.get,
        b"hash": redis.hgetall,
        b"set": redis.smembers,
        b"zset": lambda key: redis.zrange(key, 0, -1, withscores=True),
        b"stream": redis.xrange,
        b"list": lambda key: redis.lrange(key, 0, -1),
    }
    return {key: read[redis.type(key)](key) for key in sorted(redis.scan_iter(match=match, count=1000))}


def make_pool(pools: PoolStore, n: int = 6, dim: int = 3, labels: dict | None = None, **changes) -> str:
    """A pool of n items i0.. with distinct rows, and the given training labels (id -> label)."""
    labels = labels or {}
    pool_id, _ = pools.create(config(**changes), item_ids(n), features(n, dim), list(labels), list(labels.values()))
    return pool_id


def published(
    version: int,
    rankings: dict[str, tuple[list[int], list[float]]],
    labels_version: int = 0,
    model_version: int | None = None,
    classes: tuple[str, ...] = ('"a"', '"b"'),
    n_rows: int = 0,
    review: Review | None = None,
    model_blob: bytes | None = None,
) -> Published:
    """What a refresh would publish: given orders and their scores, and with a model (its classes are labels
    in their stored form) its probabilities (row r: r / 100 for the first class)."""
    proba = None
    if model_version is not None:
        first = np.arange(n_rows, dtype=np.float32) / 100
        proba = np.stack([first, 1 - first], axis=1)
    return Published(
        version=version,
        labels_version=labels_version,
        model_version=model_version,
        model_classes=list(classes) if model_version is not None else [],
        model_blob=model_blob,
        proba=proba,
        n_ranked=max((len(order) for order, _ in rankings.values()), default=0),
        rankings={name: (np.array(order), np.array(scores, dtype=float)) for name, (order, scores) in rankings.items()},
        finished_at=1000.0,
        duration_s=0.5,
        cold_start=model_version is None,
        review=review,
    )


def rank(
    refresh: RefreshStore, pool_id: str, order: list[int], strategy: str = "margin", job_id: str = "job", **kw
) -> str:
    """Publishes one ranking of the given rows, scored from len(order) down to 1, at the pool's version."""
    version = int(refresh.redis.hget(PoolKeys(pool_id).meta, "version") or 0)
    scores = [float(len(order) - i) for i in range(len(order))]
    return refresh.publish(pool_id, job_id, published(version, {strategy: (order, scores)}, **kw))


def meta_of(pools: PoolStore, pool_id: str) -> dict[str, str]:
    """A pool's meta hash as text, read straight from Redis."""
    return decode_hash(pools.redis.hgetall(PoolKeys(pool_id).meta))
