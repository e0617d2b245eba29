"""Teach-to-ranking time of a large pool, unsharded and sharded over 1 and 2 workers, and that every setup
publishes the very same rankings.

For each setup a stack of its own (embedded Redis, N `sieve worker`s, the API): stores a synthetic pool
(written through the use cases straight to Redis, which is faster than uploading it; not timed), lets it
settle, then `--rounds` times teaches one more label over HTTP and times from teach's 202 to the first query
whose ranking reflects that label (as bench/freshness.py), after untimed rounds that leave every worker
with the pool's rows in its feature cache. Prints the median, the worker's own duration, the
machine's load average, and a digest of every published ranking (which must be the same in every setup).

    python bench/sharded_refresh.py --items 2000000 --features 64 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import numpy as np
from redis import Redis
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Stack, percentile, run, status_kb, synthetic, worker_processes  # noqa: E402

from sieve.core.items import ItemBatch  # noqa: E402
from sieve.settings import Settings  # noqa: E402
from sieve.storage.keys import PoolKeys  # noqa: E402
from sieve.use_cases import Labels, Pools, PoolSpec  # noqa: E402

STORE_BATCH = 100_000
N_LABELS = 300
POLL_SECONDS = 0.02
MAX_WARM_ROUNDS = 8


def store_pool(stack: Stack, X: np.ndarray, y: np.ndarray) -> str:
    # No read timeout: Redis may take seconds over one of a large pool's publishes while rows are stored.
    pools = Pools(Redis.from_url(stack.redis_url, socket_timeout=None), Settings.from_env(stack.env))
    ids = [f"i{i}" for i in range(len(X))]
    first_batch = min(len(X), STORE_BATCH)  # labels sent with the create name items of its own batch
    labeled = np.arange(0, first_batch, first_batch // N_LABELS)[:N_LABELS]
    labels = Labels([ids[r] for r in labeled], [int(y[r]) for r in labeled])
    pool_id = None
    for lo in tqdm(range(0, len(X), STORE_BATCH), desc="store rows", leave=False):
        batch = ItemBatch(ids=ids[lo : lo + STORE_BATCH], features=X[lo : lo + STORE_BATCH].astype(np.float32))
        if pool_id is None:
            pool_id = pools.create(PoolSpec(name="sharded-bench", random_state=1), batch, labels)
        else:
            pools.add_items(pool_id, batch)
    return pool_id


def digest(stack: Stack, pool_id: str) -> str:
    redis, keys = stack.redis(), PoolKeys(pool_id)
    strategies = redis.hget(keys.meta, "ranked_strategies").decode().split(",")
    h = hashlib.sha256(redis.get(keys.proba))
    for strategy in strategies:
        h.update(strategy.encode() + redis.get(keys.rank(strategy)) + redis.get(keys.score(strategy)))
    return f"{','.join(strategies)} sha256 {h.hexdigest()[:16]}"


def measure(label: str, workers: int, shard_rows: int, X, y, rounds: int) -> dict:
    with Stack(workers=workers, extra_env={"SIEVE_SHARD_ROWS": str(shard_rows)}) as stack:
        pool_id = store_pool(stack, X, y)
        with stack.client(timeout=600) as client:
            client.wait_idle(pool_id, timeout=1200, raise_on_error=True)
            unlabeled = iter(f"i{i}" for i in range(1, len(X), 7919))

            def one_round() -> tuple[float, dict]:
                item = next(unlabeled)
                taught = client.teach(pool_id, [(item, int(y[int(item[1:])]))])
                began = time.perf_counter()
                while client.query(pool_id, k=1, lease_seconds=0)["ranked_labels_version"] < taught["labels_version"]:
                    time.sleep(POLL_SECONDS)
                lag, status = time.perf_counter() - began, client.status(pool_id)
                client.wait_idle(pool_id, timeout=600, raise_on_error=True)
                return lag, status

            # Untimed rounds until every worker keeps the pool's rows in its feature cache, as a worker does
            # after its first shard of the pool: which shards a worker takes varies from round to round.
            pids, rows_kb = worker_processes(stack), X.shape[0] * X.shape[1] * 4 / 1024
            for _ in tqdm(range(MAX_WARM_ROUNDS), desc=f"{label}: warm-up", leave=False):
                one_round()
                if min(status_kb(pid, "VmRSS") for pid in pids) > rows_kb:
                    break
            lags, durations, loads = [], [], []
            for _ in tqdm(range(rounds), desc=label, leave=False):
                lag, status = one_round()
                lags.append(lag)
                durations.append(status["retrain"]["last_duration_s"])
                loads.append(os.getloadavg()[0])
            return {
                "label": label,
                "teach_to_ranking_s": percentile(lags, 50),
                "worker_s": percentile(durations, 50),
                "lags": lags,
                "load": loads,
                "digest": digest(stack, pool_id),
            }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shard-rows", type=int, default=Settings.shard_rows)
    parser.add_argument("--setups", default="0,1,2", help="0 unsharded, 1 and 2 sharded on 1, 2 workers")
    args = parser.parse_args()
    X, y = synthetic(args.items, args.features)
    setups = [
        ("unsharded, 1 worker", 1, args.items),
        ("sharded, 1 worker", 1, args.shard_rows),
        ("sharded, 2 workers", 2, args.shard_rows),
    ]
    setups = [setups[int(n)] for n in args.setups.split(",")]
    results = [measure(label, workers, rows, X, y, args.rounds) for label, workers, rows in setups]
    print(f"{args.items:,} items x {args.features}, {os.cpu_count()} CPUs; median of {args.rounds} rounds")
    for r in results:
        each = [round(x, 2) for x in r["lags"]]
        print(
            f"  {r['label']:<22} teach->ranking {r['teach_to_ranking_s']:6.2f} s (each {each}),"
            f" worker {r['worker_s']:6.2f} s, load average {[round(x, 1) for x in r['load']]}"
        )
    for r in results:
        print(f"  {r['label']:<22} {r['digest']}")
    same = len({r["digest"] for r in results}) == 1
    print("identical rankings in every setup: " + ("YES" if same else "NO"))
    return 0 if same else 1


if __name__ == "__main__":
    run(main)
