"""The sweeper against a real Redis, with no worker: what it takes for a lost refresh and what it does not."""

from __future__ import annotations

import time

import numpy as np
import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from sieve.core.items import ItemBatch
from sieve.embedded import EmbeddedRedis
from sieve.job_queue import refresh_queue
from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from sieve.use_cases import Labels, Pools, PoolSpec
from sieve.workers.sweeper import LOST_GRACE_MS, Sweeper


@pytest.fixture
def own(tmp_path, settings):
    """A Redis of its own: the suite's workers sweep the shared one, and would recover these jobs too."""
    with EmbeddedRedis(tmp_path / "redis") as server:
        client = Redis.from_url(server.url)
        yield client, settings.with_overrides(redis_url=server.url)
        client.close()


def _pool_with_a_queued_refresh(redis, settings) -> tuple[Pools, str, str]:
    pools = Pools(redis, settings)
    rows = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    pool_id = pools.create(
        PoolSpec(), ItemBatch(ids=[f"i{n}" for n in range(20)], features=rows), Labels(["i0", "i1"], ["a", "b"])
    )
    job_id = redis.get(PoolKeys(pool_id).pending).decode()
    return pools, pool_id, job_id


def test_a_job_seen_waiting_is_not_taken_for_lost_when_a_worker_dequeues_it_between_two_sweeps(own):
    redis, settings = own
    _, pool_id, job_id = _pool_with_a_queued_refresh(redis, settings)
    sweeper = Sweeper(redis, settings)
    keys = PoolKeys(pool_id)
    # An earlier look missed the job in its queue (it was enqueued during that sweep) and left its mark.
    sweeper.store.recover_lost(
        pool_id, job_id, job_ids.recovered_refresh(pool_id), settings.pending_ttl_ms, LOST_GRACE_MS, waiting=False
    )
    assert redis.get(keys.lost) is not None
    time.sleep(LOST_GRACE_MS / 1000 + 0.2)
    assert sweeper.sweep() == []  # it waits in its lane now: that ends the mark
    assert redis.get(keys.lost) is None
    # A live worker dequeues it and is about to claim the pool when the next sweep runs.
    taken = Queue.dequeue_any(refresh_queue(redis, settings).all(), None, connection=redis, serializer=JSONSerializer)
    assert taken[0].id == job_id
    assert sweeper.sweep() == []
    assert redis.get(keys.pending).decode() == job_id


def test_a_job_in_no_queue_is_asked_again_after_two_looks_however_long_a_sweep_takes(own):
    redis, settings = own
    _, pool_id, job_id = _pool_with_a_queued_refresh(redis, settings)
    sweeper = Sweeper(redis, settings)
    Queue.dequeue_any(refresh_queue(redis, settings).all(), None, connection=redis, serializer=JSONSerializer)
    assert sweeper.sweep() == []  # the first look only marks it
    # The mark outlives a slow sweep: it lives as long as the pending job could.
    assert redis.pttl(PoolKeys(pool_id).lost) > 10 * LOST_GRACE_MS
    time.sleep(LOST_GRACE_MS / 1000 + 0.2)
    (asked,) = sweeper.sweep()
    assert redis.get(PoolKeys(pool_id).pending).decode() == asked != job_id
