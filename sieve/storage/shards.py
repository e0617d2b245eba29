"""A sharded refresh's keys: its plan (with the signed model), who scores each shard, what each shard scored.

Every key is named by the run (a fresh id each time a refresh shards), so nothing a run of an older or
retried refresh left behind can be read as this run's, and every key expires, so an abandoned run's vanish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from redis import Redis

from sieve.core.sharding import ShardScores
from sieve.storage.keys import PoolKeys
from sieve.storage.replies import text
from sieve.storage.scripts import Scripts


class IncompleteShards(RuntimeError):
    """A shard's scores are missing or are not this run's: the refresh must not publish."""


@dataclass(frozen=True)
class ShardPlan:
    """What every shard of one run needs: the refresh it belongs to, where the rows are, what to rank."""

    job_id: str
    """The refresh job that runs the shards and publishes; its pool's running mark names it while it lives."""
    version: int
    model_version: int
    n_items: int
    dim: int
    chunk_rows: int
    stored_sparse: bool
    bounds: list[tuple[int, int]]
    strategies: tuple[str, ...]
    excluded: np.ndarray
    """Training and evaluation rows as the refresh's snapshot read them: never ranked."""
    model_blob: bytes
    """The fitted model, signed (storage/models.py): each shard unpickles it once, after checking it."""


def _f8(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f8")


class ShardStore:
    def __init__(self, redis: Redis):
        self.redis = redis
        self.scripts = Scripts.register(redis)

    def open(self, pool_id: str, run: str, plan: ShardPlan, ttl_ms: int) -> None:
        key = PoolKeys(pool_id).shard_plan(run)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            key,
            mapping={
                "job_id": plan.job_id,
                "version": plan.version,
                "model_version": plan.model_version,
                "n_items": plan.n_items,
                "dim": plan.dim,
                "chunk_rows": plan.chunk_rows,
                "sparse": "1" if plan.stored_sparse else "",
                "bounds": json.dumps(plan.bounds),
                "strategies": ",".join(plan.strategies),
                "excluded": np.asarray(plan.excluded).astype("<u4").tobytes(),
                "model": plan.model_blob,
            },
        )
        pipe.pexpire(key, ttl_ms)
        pipe.execute()

    def plan(self, pool_id: str, run: str) -> ShardPlan | None:
        """The run's plan while its refresh still runs (the pool's running mark names it); None otherwise."""
        keys = PoolKeys(pool_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(keys.shard_plan(run))
        pipe.get(keys.running)
        raw, running = pipe.execute()
        if not raw:
            return None
        fields = {text(k): v for k, v in raw.items()}
        job_id = text(fields["job_id"])
        if running is None or text(running) != job_id:
            return None
        return ShardPlan(
            job_id=job_id,
            version=int(fields["version"]),
            model_version=int(fields["model_version"]),
            n_items=int(fields["n_items"]),
            dim=int(fields["dim"]),
            chunk_rows=int(fields["chunk_rows"]),
            stored_sparse=bool(fields["sparse"]),
            bounds=[tuple(b) for b in json.loads(fields["bounds"])],
            strategies=tuple(filter(None, text(fields["strategies"]).split(","))),
            excluded=np.frombuffer(fields["excluded"], dtype="<u4").astype(np.int64),
            model_blob=bytes(fields["model"]),
        )

    def claim(self, pool_id: str, run: str, index: int, token: str, ttl_ms: int) -> bool:
        """Takes shard `index` for `token` unless another scorer holds it (a retried job keeps its own)."""
        key = PoolKeys(pool_id).shard_claim(run, index)
        return bool(self.redis.set(key, token, nx=True, px=ttl_ms)) or self.beat(pool_id, run, index, token, ttl_ms)

    def beat(self, pool_id: str, run: str, index: int, token: str, ttl_ms: int) -> bool:
        """Renews the claim; False once it is no longer `token`'s."""
        key = PoolKeys(pool_id).shard_claim(run, index)
        return bool(self.scripts.heartbeat(keys=[key], args=[token, ttl_ms]))

    def store(self, pool_id: str, run: str, index: int, plan: ShardPlan, scores: ShardScores, ttl_ms: int) -> str:
        """Keeps what shard `index` scored: 'ok'; 'done' when it was stored already; 'gone' once the run ended."""
        keys = PoolKeys(pool_id)
        fields = {
            "job_id": plan.job_id,
            "version": plan.version,
            "first": scores.first,
            "stop": scores.stop,
            "n_classes": scores.proba.shape[1],
            "proba": scores.proba.astype("<f8").tobytes(),
        }
        for name, (rows, values) in scores.orders.items():
            fields[f"rank:{name}"] = rows.astype("<u4").tobytes()
            fields[f"score:{name}"] = values.astype("<f8").tobytes()
        args = [ttl_ms, *(x for pair in fields.items() for x in pair)]
        return text(self.scripts.store_shard(keys=[keys.shard_plan(run), keys.shard_scores(run, index)], args=args))

    def mark_scored(self, pool_id: str, run: str, index: int, plan: ShardPlan, ttl_ms: int) -> str:
        """Records that the refresh job scored shard `index` itself and keeps its scores in memory: shard jobs
        then skip it, and no scores travel through Redis. As `store`: 'ok', 'done' or 'gone'."""
        keys = PoolKeys(pool_id)
        fields = {"job_id": plan.job_id, "version": plan.version, "scored_by": "refresh"}
        args = [ttl_ms, *(x for pair in fields.items() for x in pair)]
        return text(self.scripts.store_shard(keys=[keys.shard_plan(run), keys.shard_scores(run, index)], args=args))

    def stored(self, pool_id: str, run: str, n_shards: int) -> list[bool]:
        """Which shards' scores are stored."""
        keys = PoolKeys(pool_id)
        pipe = self.redis.pipeline(transaction=False)
        for index in range(n_shards):
            pipe.exists(keys.shard_scores(run, index))
        return [bool(found) for found in pipe.execute()]

    def read(self, pool_id: str, run: str, plan: ShardPlan, held: dict[int, ShardScores] | None = None) -> list:
        """Every shard's scores (those the refresh job `held` in memory as they are, the others read), each
        checked to be this run's, of its rows, complete; IncompleteShards otherwise, so that a refresh never
        publishes a ranking some shard is missing from."""
        keys = PoolKeys(pool_id)
        held = held or {}
        read = [index for index in range(len(plan.bounds)) if index not in held]
        pipe = self.redis.pipeline(transaction=False)
        for index in read:
            pipe.hgetall(keys.shard_scores(run, index))
        shards = dict(held)
        for index, raw in zip(read, pipe.execute()):
            first, stop = plan.bounds[index]
            fields = {text(k): v for k, v in raw.items()}
            if not fields:
                raise IncompleteShards(f"shard {index} of run {run} stored no scores")
            if (
                text(fields["job_id"]) != plan.job_id
                or int(fields["version"]) != plan.version
                or "first" not in fields
                or (int(fields["first"]), int(fields["stop"])) != (first, stop)
            ):
                raise IncompleteShards(f"shard {index} of run {run} holds another refresh's scores")
            n_classes = int(fields["n_classes"])
            proba = _f8(fields["proba"])
            if proba.size != (stop - first) * n_classes:
                raise IncompleteShards(f"shard {index} of run {run} holds {proba.size} probabilities")
            unlabeled = (stop - first) - int(np.count_nonzero((plan.excluded >= first) & (plan.excluded < stop)))
            orders = {}
            for name in plan.strategies:
                rows = np.frombuffer(fields.get(f"rank:{name}", b""), dtype="<u4").astype(np.int64)
                values = _f8(fields.get(f"score:{name}", b""))
                if len(rows) != unlabeled or len(values) != unlabeled:
                    raise IncompleteShards(f"shard {index} of run {run} has no complete {name} ranking")
                orders[name] = (rows, values)
            shards[index] = ShardScores(first=first, stop=stop, proba=proba.reshape(-1, n_classes), orders=orders)
        return [shards[index] for index in range(len(plan.bounds))]

    def close(self, pool_id: str, run: str, n_shards: int) -> None:
        """Deletes the run's keys; a shard still running then finds its plan gone and stores nothing."""
        keys = PoolKeys(pool_id)
        names = [keys.shard_plan(run)]
        for index in range(n_shards):
            names += [keys.shard_claim(run, index), keys.shard_scores(run, index)]
        self.redis.delete(*names)
