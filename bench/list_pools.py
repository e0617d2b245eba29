"""How fast `GET /v1/pools` answers a tenant that owns a few pools, on a Redis holding 5,000 pools.

Starts its own stack (embedded Redis in a temp dir, no worker, the API with 1 process x 8 threads on a
free port), creates the pools through the storage layer (empty pools, spread over 50 tenants, plus one
tenant with `--own` pools), makes an API key for that tenant, and times `--calls` listings on one
keep-alive connection after 20 warm-up calls. A listing reads only the caller's tenant index and its pools,
so the figure should not depend on how many pools other tenants have.

    python bench/list_pools.py [--pools 5000] [--own 5] [--calls 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from redis import Redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Stack, percentile, run  # noqa: E402

from sieve.storage.api_keys import ApiKeys  # noqa: E402
from sieve.storage.pool_store import PoolConfig, PoolStore  # noqa: E402

WARMUP_CALLS = 20
OTHER_TENANTS = 50


def _config(tenant: str) -> PoolConfig:
    return PoolConfig(
        name="bench",
        model={"type": "logistic_regression"},
        strategy="margin",
        random_state=0,
        classes=None,
        tenant=tenant,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=5000, help="pools in Redis, all tenants together")
    parser.add_argument("--own", type=int, default=5, help="pools of the tenant that lists")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with Stack(workers=0) as stack:
        redis = Redis.from_url(stack.redis_url)
        store = PoolStore(redis, pending_ttl_ms=60_000)
        started = time.perf_counter()
        for i in range(args.pools - args.own):
            store.create(_config(f"tenant-{i % OTHER_TENANTS}"), [], None, [], [])
        for _ in range(args.own):
            store.create(_config("lister"), [], None, [], [])
        print(f"created {args.pools} pools over {OTHER_TENANTS + 1} tenants in {time.perf_counter() - started:.1f} s")
        client = stack.client(timeout=300, api_key=ApiKeys(redis).create("lister", "bench")[1])
        times = []
        for i in range(WARMUP_CALLS + args.calls):
            start = time.perf_counter()
            answer = client.list_pools()
            if i >= WARMUP_CALLS:
                times.append((time.perf_counter() - start) * 1000)
        assert len(answer["pools"]) == args.own, len(answer["pools"])
        print(
            f"GET /v1/pools for a tenant with {args.own} of {args.pools} pools: "
            f"p50 {percentile(times, 50):.2f} ms, p99 {percentile(times, 99):.2f} ms over {args.calls} calls"
        )
    return 0


if __name__ == "__main__":
    run(main)
