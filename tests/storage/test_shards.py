"""A sharded refresh's keys: a shard writes only into a live run, once; a merge reads only complete scores of
its own run."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sieve.core.sharding import ShardScores
from sieve.storage.keys import PoolKeys
from sieve.storage.shards import IncompleteShards, ShardPlan, ShardStore
from tests.storage.support import features, make_pool

JOB = "refresh-job-1"


@pytest.fixture
def shards(db) -> ShardStore:
    return ShardStore(db)


def _plan(job_id: str = JOB, version: int = 3) -> ShardPlan:
    return ShardPlan(
        job_id=job_id,
        version=version,
        model_version=1,
        n_items=10,
        dim=3,
        chunk_rows=65_536,
        stored_sparse=False,
        bounds=[(0, 6), (6, 10)],
        strategies=("margin",),
        excluded=np.array([1, 7]),
        model_blob=b"signed model",
    )


def _scores(first: int, stop: int, excluded=(1, 7)) -> ShardScores:
    rows = np.array([r for r in range(first, stop) if r not in excluded])
    proba = np.full((stop - first, 2), 0.5)
    return ShardScores(first, stop, proba, {"margin": (rows, np.linspace(1, 0, len(rows)))})


def _running(db, refresh, pools, job_id: str = JOB) -> str:
    pool_id = make_pool(pools, n=10)
    assert refresh.claim(pool_id, job_id, 60_000)[0] == "ok"
    return pool_id


def test_a_plan_is_read_only_while_its_refresh_holds_the_running_mark(db, shards, refresh, pools):
    pool_id = _running(db, refresh, pools)
    shards.open(pool_id, "run1", _plan(), 60_000)
    plan = shards.plan(pool_id, "run1")
    assert plan.bounds == [(0, 6), (6, 10)] and plan.model_blob == b"signed model"
    assert plan.excluded.tolist() == [1, 7]
    db.set(PoolKeys(pool_id).running, "refresh-job-2")  # a newer refresh runs: this run is over
    assert shards.plan(pool_id, "run1") is None
    assert shards.plan(pool_id, "no-such-run") is None


def test_a_shard_is_stored_once_and_not_after_its_run_ended(db, shards, refresh, pools):
    pool_id = _running(db, refresh, pools)
    plan = _plan()
    shards.open(pool_id, "run1", plan, 60_000)
    assert shards.store(pool_id, "run1", 0, plan, _scores(0, 6), 60_000) == "ok"
    assert shards.store(pool_id, "run1", 0, plan, _scores(0, 6), 60_000) == "done"
    assert shards.stored(pool_id, "run1", 2) == [True, False]
    assert 0 < db.pttl(PoolKeys(pool_id).shard_scores("run1", 0)) <= 60_000
    shards.close(pool_id, "run1", 2)
    assert shards.store(pool_id, "run1", 1, plan, _scores(6, 10), 60_000) == "gone"
    assert db.keys(PoolKeys(pool_id).every_shard_key) == []


def test_a_merge_reads_every_shard_of_its_run_or_refuses(db, shards, refresh, pools):
    pool_id = _running(db, refresh, pools)
    plan = _plan()
    shards.open(pool_id, "run1", plan, 60_000)
    shards.store(pool_id, "run1", 0, plan, _scores(0, 6), 60_000)
    with pytest.raises(IncompleteShards, match="shard 1 .* stored no scores"):
        shards.read(pool_id, "run1", plan)
    # Scores of another refresh (a stale shard of an older version) under this run's key are refused.
    shards.store(pool_id, "run1", 1, _plan(job_id="refresh-job-0", version=2), _scores(6, 10), 60_000)
    with pytest.raises(IncompleteShards, match="another refresh"):
        shards.read(pool_id, "run1", plan)
    db.delete(PoolKeys(pool_id).shard_scores("run1", 1))
    shards.store(pool_id, "run1", 1, plan, _scores(6, 10, excluded=(1,)), 60_000)  # one row too many
    with pytest.raises(IncompleteShards, match="no complete margin ranking"):
        shards.read(pool_id, "run1", plan)
    db.delete(PoolKeys(pool_id).shard_scores("run1", 1))
    shards.store(pool_id, "run1", 1, plan, _scores(6, 10), 60_000)
    read = shards.read(pool_id, "run1", plan)
    assert [(s.first, s.stop) for s in read] == [(0, 6), (6, 10)]
    assert read[1].orders["margin"][0].tolist() == [6, 8, 9]


def test_shards_the_refresh_job_scored_itself_are_merged_from_its_memory_only(db, shards, refresh, pools):
    pool_id = _running(db, refresh, pools)
    plan = _plan()
    shards.open(pool_id, "run1", plan, 60_000)
    assert shards.mark_scored(pool_id, "run1", 0, plan, 60_000) == "ok"
    shards.store(pool_id, "run1", 1, plan, _scores(6, 10), 60_000)
    assert shards.stored(pool_id, "run1", 2) == [True, True]  # shard jobs skip it
    with pytest.raises(IncompleteShards):  # a mark holds no scores
        shards.read(pool_id, "run1", plan)
    mine = _scores(0, 6)
    read = shards.read(pool_id, "run1", plan, held={0: mine})
    assert read[0] is mine and read[1].orders["margin"][0].tolist() == [6, 8, 9]


def test_a_shard_claimed_by_one_scorer_is_free_again_once_its_claim_expires(db, shards, refresh, pools):
    pool_id = _running(db, refresh, pools)
    assert shards.claim(pool_id, "run1", 0, "shard-a", 200)
    assert not shards.claim(pool_id, "run1", 0, "refresh-job-1", 200)
    assert shards.claim(pool_id, "run1", 0, "shard-a", 200)  # a retried job holds its own claim again
    assert shards.beat(pool_id, "run1", 0, "shard-a", 200)
    time.sleep(0.3)
    assert not shards.beat(pool_id, "run1", 0, "shard-a", 200)
    assert shards.claim(pool_id, "run1", 0, "refresh-job-1", 200)


@pytest.mark.parametrize("cache_bytes", [1, 1 << 20])
def test_a_shard_reads_its_rows_from_the_cache_or_its_range_from_redis(db, pools, cache_bytes):
    from sieve.workers.feature_cache import FeatureCache

    pool_id = make_pool(pools, n=10)
    cache = FeatureCache(cache_bytes)
    rows = cache.row_range(db, pool_id, 6, 10, n_items=10, dim=3, chunk_rows=65_536)
    assert rows.tobytes() == features(10)[6:10].tobytes()
    # A pool that fits is kept whole: a later shard of it reads nothing from Redis.
    kept = cache.row_range(db, pool_id, 0, 6, n_items=10, dim=3, chunk_rows=65_536)
    assert kept.tobytes() == features(10)[:6].tobytes()
    assert (kept.base is not None) == (cache_bytes > 1)
