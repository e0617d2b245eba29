"""Enters pools made before tenants had their own index into it, once per Redis."""

from __future__ import annotations

from itertools import islice

from redis import Redis

from sieve.storage.keys import LABELSTUDIO_PROJECTS, POOL_INDEX, TENANT_INDEX_READY, PoolKeys, TenantKeys
from sieve.storage.replies import text
from sieve.storage.scripts import Scripts

BATCH = 500


def backfill(redis: Redis, scripts: Scripts) -> int:
    """Puts every pool of `sieve:pools` in its tenant's index, unless that was done already; how many it
    entered. Idempotent, and safe beside creates and deletes: each pool is entered by a script that checks
    it still exists."""
    if redis.exists(TENANT_INDEX_READY):
        return 0
    entered = 0
    ids = (text(raw) for raw in redis.sscan_iter(POOL_INDEX, count=BATCH))
    while batch := list(islice(ids, BATCH)):
        pipe = redis.pipeline(transaction=False)
        for pool_id in batch:
            pipe.hget(PoolKeys(pool_id).meta, "tenant")
        owners = pipe.execute()
        pipe = redis.pipeline(transaction=False)
        for pool_id, owner in zip(batch, owners):
            if owner is not None:
                tenant = text(owner)
                scripts.index_pool(
                    keys=[PoolKeys(pool_id).meta, TenantKeys(tenant).pools], args=[pool_id, tenant], client=pipe
                )
        entered += sum(pipe.execute())
    redis.set(TENANT_INDEX_READY, "1")
    return entered


def adopt_unowned(redis: Redis, scripts: Scripts, tenant: str) -> int:
    """Gives every pool without a tenant (made while auth was off) to `tenant`; how many it gave. Each pool
    moves in one script that checks it still exists and is still unowned, so a delete or a second adoption
    racing it changes nothing twice."""
    unowned = TenantKeys("").pools
    adopted = 0
    # Every pool, not only the empty tenant's index: a pool made before indexes existed may be in none yet.
    ids = (text(raw) for raw in redis.sscan_iter(POOL_INDEX, count=BATCH))
    while batch := list(islice(ids, BATCH)):
        pipe = redis.pipeline(transaction=False)
        for pool_id in batch:
            keys = PoolKeys(pool_id)
            scripts.adopt_pool(
                keys=[keys.meta, unowned, TenantKeys(tenant).pools, keys.labelstudio, LABELSTUDIO_PROJECTS],
                args=[pool_id, tenant],
                client=pipe,
            )
        adopted += sum(pipe.execute())
    return adopted
