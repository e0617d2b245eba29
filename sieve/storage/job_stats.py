"""Refresh outcomes and durations, counted in Redis by the workers, for /metrics to read at scrape time."""

from __future__ import annotations

import math

from redis import Redis

from sieve.storage.keys import JOB_STATS
from sieve.storage.replies import decode_hash

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, math.inf)
"""Upper bounds (seconds) of the refresh duration histogram."""


def _bucket(seconds: float) -> float:
    return next(bound for bound in BUCKETS if seconds <= bound)


def record(redis: Redis, outcome: str, seconds: float) -> None:
    """Counts one refresh that ended with `outcome` ('ok', 'stale', 'failed', ...) after `seconds`."""
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(JOB_STATS, f"outcome:{outcome}", 1)
    pipe.hincrby(JOB_STATS, f"le:{_bucket(seconds)!r}", 1)
    pipe.hincrbyfloat(JOB_STATS, "seconds_sum", seconds)
    pipe.execute()


def read(redis: Redis) -> tuple[dict[str, int], list[tuple[str, int]], float]:
    """Refreshes per outcome; cumulative (upper bound, count) buckets as Prometheus wants them; the sum."""
    stats = decode_hash(redis.hgetall(JOB_STATS))
    outcomes = {k.split(":", 1)[1]: int(v) for k, v in stats.items() if k.startswith("outcome:")}
    buckets, total = [], 0
    for bound in BUCKETS:
        total += int(stats.get(f"le:{bound!r}", 0))
        buckets.append(("+Inf" if math.isinf(bound) else repr(bound), total))
    return outcomes, buckets, float(stats.get("seconds_sum", 0.0))
