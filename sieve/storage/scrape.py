"""What /metrics reads from Redis when scraped: pool sizes and the workers' refresh counts."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from sieve.storage import job_stats
from sieve.storage.keys import POOL_INDEX, PoolKeys
from sieve.storage.replies import text


@dataclass(frozen=True)
class PoolSize:
    pool_id: str
    items: int
    labeled: int
    eval: int


class ScrapeReads:
    def __init__(self, redis: Redis):
        self.redis = redis

    def pool_sizes(self, limit: int) -> tuple[int, list[PoolSize]]:
        """How many pools exist, and the sizes of the first `limit` by id (one pipelined round trip)."""
        ids = sorted(text(raw) for raw in self.redis.smembers(POOL_INDEX))
        pipe = self.redis.pipeline(transaction=False)
        shown = ids[:limit]
        for pool_id in shown:
            pipe.hmget(PoolKeys(pool_id).meta, ["n_items", "n_labeled", "n_eval"])
        sizes = [
            PoolSize(pool_id, *(int(value or 0) for value in values))
            for pool_id, values in zip(shown, pipe.execute() if shown else [])
            if values[0] is not None  # else deleted since the listing
        ]
        return len(ids), sizes

    def refresh_stats(self) -> tuple[dict[str, int], list[tuple[str, int]], float]:
        return job_stats.read(self.redis)
