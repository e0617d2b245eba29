"""A worker SIGKILLed while it scores a shard of a sharded refresh: the shard is scored again and the refresh
publishes a complete ranking, the same as a refresh nobody killed; never one that misses the shard.

RQ would notice the dead worker's shard job only at a maintenance pass, job timeout + 60 s later. Sieve does
not wait for that: the shard's claim, which its scorer's heartbeat renews, expires within 10 s, and the
refresh job, which waits for every shard while it holds its pool's running mark, scores the shard itself.
"""

from __future__ import annotations

import os
import signal

import numpy as np
from rq import Worker

from sieve.client import Client
from sieve.core.fitting import SCORING_ROWS
from sieve.storage.keys import PoolKeys
from tests.fault.conftest import SECRET
from tests.stack import Stack, hermetic_env, wait_until

N_ITEMS = 4 * SCORING_ROWS
FOREST = {"type": "random_forest", "params": {"n_estimators": 100, "criterion": "log_loss"}}
"""The slowest model to score that the bounds allow: a shard takes a few tenths of a second."""


def _pool(client: Client) -> str:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(N_ITEMS, 8)).round(4)
    noisy = rows[:, 0] + rows[:, 1] + rng.normal(scale=1.5, size=N_ITEMS) > 0
    labels = [(f"i{n}", "pos" if noisy[n] else "neg") for n in range(0, N_ITEMS, 41)]
    items = [{"id": f"i{n}", "features": row.tolist()} for n, row in enumerate(rows)]
    return client.create_pool(items, labels, model=FOREST, strategy="entropy", random_state=3)["pool_id"]


def _claimed_shard(redis, pool_id: str) -> tuple[str, str] | None:
    """(claim key, shard job id) of a shard a shard job (not the refresh job) is scoring now."""
    for key in redis.scan_iter(match=PoolKeys(pool_id).every_shard_key, count=1000):
        if redis.type(key) == b"string" and (token := redis.get(key)) and token.startswith(b"shard-"):
            return key.decode(), token.decode()
    return None


def _published(redis, pool_id: str) -> dict:
    keys = PoolKeys(pool_id)
    meta = {k.decode(): v.decode() for k, v in redis.hgetall(keys.meta).items()}
    blobs = {s: (redis.get(keys.rank(s)), redis.get(keys.score(s))) for s in meta["ranked_strategies"].split(",")}
    return {"meta": meta, "proba": redis.get(keys.proba), **blobs}


def test_a_shard_whose_worker_is_killed_is_scored_again_and_the_ranking_is_complete(tmp_path):
    env = hermetic_env(SIEVE_SECRET_KEY=SECRET, SIEVE_SHARD_ROWS=str(SCORING_ROWS), SIEVE_JOB_RETRIES="1")
    with Stack(tmp_path / "stack", env=env, workers=2) as stack, stack.client(timeout=120, retries=0) as client:
        redis = stack.redis()
        pool_id = _pool(client)
        claim_key, shard_job = wait_until(
            lambda: _claimed_shard(redis, pool_id), 90, "a shard job to claim a shard", interval=0.002
        )
        (holder,) = [w for w in Worker.all(connection=redis) if w.get_current_job_id() == shard_job]
        os.kill(holder.pid, signal.SIGSTOP)  # frozen before it can store its scores
        scores_key = claim_key.replace(":claim:", ":scores:")
        killed_before_storing = not redis.exists(scores_key)
        os.kill(holder.pid, signal.SIGKILL)
        next(p for p in stack.workers if p.pid == holder.pid).wait(10)
        assert killed_before_storing, "the shard was scored before the kill; make its scoring slower"
        assert redis.get(claim_key).decode() == shard_job  # its claim outlives it, for now

        status = client.wait_idle(pool_id, timeout=60, raise_on_error=True)
        killed = _published(redis, pool_id)
        assert killed["meta"]["last_error"] == ""
        assert redis.keys(PoolKeys(pool_id).every_shard_key) == []
        # Complete: every unlabeled row once in every ranking.
        n_unlabeled = N_ITEMS - status["n_labeled"]
        for strategy in killed["meta"]["ranked_strategies"].split(","):
            rows = np.frombuffer(killed[strategy][0], dtype="<u4")
            assert len(rows) == len(np.unique(rows)) == n_unlabeled, strategy

        # And the same, bit for bit, as the same pool refreshed with no kill.
        again = _pool(client)
        client.wait_idle(again, timeout=60, raise_on_error=True)
        clean = _published(redis, again)
        assert clean["meta"]["version"] == killed["meta"]["version"]
        assert clean["proba"] == killed["proba"]
        for strategy in clean["meta"]["ranked_strategies"].split(","):
            assert clean[strategy] == killed[strategy], strategy
