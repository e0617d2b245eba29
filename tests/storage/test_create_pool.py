"""Script create_pool (through PoolStore.create): the meta, the indexes, the tenant's cap and idempotent creates."""

from __future__ import annotations

import json

import pytest

from sieve.core.errors import Conflict, InvalidInput
from sieve.storage.keys import POOL_INDEX, PoolKeys, TenantKeys
from sieve.storage.pool_store import Idempotency
from tests.storage.support import config, features, item_ids, meta_of, snapshot


def test_a_create_writes_the_meta_and_enters_the_pool_in_both_indexes(db, pools):
    pool_id, job_id = pools.create(config(tenant="acme"), item_ids(4), features(4), ["i0"], ["a"])
    keys = PoolKeys(pool_id)
    meta = meta_of(pools, pool_id)
    assert meta["tenant"] == "acme"
    assert meta["strategy"] == "margin"
    assert (meta["n_items"], meta["dim"], meta["version"], meta["labels_version"]) == ("4", "3", "2", "1")
    assert db.sismember(POOL_INDEX, pool_id)
    assert db.zrange(TenantKeys("acme").pools, 0, -1, withscores=True) == [(pool_id.encode(), 0.0)]
    assert db.zcard(TenantKeys("").pools) == 0
    # The items' change asked for the refresh; the labels' change coalesced into it.
    assert job_id == f"refresh-{pool_id}-1"
    assert db.get(keys.pending) == job_id.encode()
    assert db.hget(keys.labels, 0) == b'"a"'


def test_a_pool_without_items_has_no_dimension_yet(pools):
    pool_id, job_id = pools.create(config(), [], None, [], [])
    meta = meta_of(pools, pool_id)
    assert (meta["n_items"], meta["dim"], meta["chunk_rows"], meta["version"]) == ("0", "", "", "0")
    assert job_id is None


def test_a_full_tenant_is_refused_and_nothing_is_written(db, pools):
    pools.create(config(tenant="t"), item_ids(2), features(2), [], [], max_pools=2)
    pools.create(config(tenant="t"), item_ids(2), features(2), [], [], max_pools=2)
    before = snapshot(db)
    with pytest.raises(Conflict, match="already has 2 pools"):
        pools.create(config(tenant="t"), item_ids(2), features(2), ["i0"], ["a"], max_pools=2)
    assert snapshot(db) == before
    # Another tenant's cap is its own.
    pools.create(config(tenant="u"), item_ids(2), features(2), [], [], max_pools=2)


def test_a_replayed_create_answers_the_same_pool_and_no_job(db, pools):
    idem = Idempotency("k1", "digest-1")
    first, job_id = pools.create(config(tenant="t"), item_ids(3), features(3), [], [], idem=idem)
    assert job_id
    before = snapshot(db)
    again, no_job = pools.create(config(tenant="t"), item_ids(3), features(3), [], [], idem=idem)
    assert (again, no_job) == (first, None)
    assert snapshot(db) == before
    assert json.loads(db.hget(TenantKeys("t").creates, "k1")) == {"hash": "digest-1", "pool": first}
    assert db.zscore(TenantKeys("t").creates_at, "k1") is not None


def test_a_key_reused_with_another_body_is_refused(db, pools):
    pools.create(config(), item_ids(3), features(3), [], [], idem=Idempotency("k1", "digest-1"))
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        pools.create(config(), item_ids(3), features(3), [], [], idem=Idempotency("k1", "digest-2"))
    assert refused.value.field == "Idempotency-Key"
    assert snapshot(db) == before


def test_idempotency_keys_belong_to_their_tenant(db, pools):
    mine, _ = pools.create(config(tenant="a"), item_ids(1), features(1), [], [], idem=Idempotency("k", "h"))
    theirs, _ = pools.create(config(tenant="b"), item_ids(1), features(1), [], [], idem=Idempotency("k", "h"))
    assert mine != theirs


def test_a_replay_after_its_pool_was_deleted_makes_a_new_pool_and_the_record_follows(db, pools):
    idem = Idempotency("k1", "digest-1")
    first, _ = pools.create(config(), item_ids(3), features(3), [], [], idem=idem)
    pools.delete(first)
    second, job_id = pools.create(config(), item_ids(3), features(3), [], [], idem=idem)
    assert second != first and job_id
    assert json.loads(db.hget(TenantKeys("").creates, "k1"))["pool"] == second
    assert db.zrange(TenantKeys("").pools, 0, -1) == [second.encode()]


def _create_call(scripts, pool_id, key, digest, read, max_pools=""):
    tenant = TenantKeys("")
    return [
        x.decode()
        for x in scripts.create_pool(
            keys=[
                PoolKeys(pool_id).meta,
                POOL_INDEX,
                tenant.pools,
                tenant.creates,
                tenant.creates_at,
                PoolKeys(read or pool_id).meta,
            ],
            args=[pool_id, key, digest, read, max_pools, 3600, "name", "x", "n_items", "0", "version", "0"],
        )
    ]


def test_a_record_changed_since_the_caller_read_it_makes_the_caller_retry(db, scripts):
    assert _create_call(scripts, "aaaa", "k", "h", "") == ["ok"]
    before = snapshot(db)
    # This caller read no record for the key, but a create got in first.
    assert _create_call(scripts, "bbbb", "k", "h", "") == ["retry"]
    assert snapshot(db) == before
    # With the record read again: that pool is the answer.
    assert _create_call(scripts, "bbbb", "k", "h", "aaaa") == ["replay", "aaaa"]
    assert not db.exists(PoolKeys("bbbb").meta)


def test_an_id_already_taken_is_never_overwritten(db, scripts):
    assert _create_call(scripts, "aaaa", "", "", "") == ["ok"]
    db.hset(PoolKeys("aaaa").meta, "name", "kept")
    assert _create_call(scripts, "aaaa", "", "", "") == ["exists"]
    assert db.hget(PoolKeys("aaaa").meta, "name") == b"kept"


def test_a_delete_removes_every_key_of_the_pool_and_its_index_entries(db, pools):
    pool_id, _ = pools.create(config(tenant="t"), item_ids(3), features(3), ["i1"], ["a"])
    pools.delete(pool_id)
    assert not any(db.exists(key) for key in PoolKeys(pool_id).all_keys(1))
    assert not db.sismember(POOL_INDEX, pool_id)
    assert db.zcard(TenantKeys("t").pools) == 0


def test_a_replay_is_answered_even_once_the_tenant_is_full(db, pools):
    idem = Idempotency("k1", "digest-1")
    first, _ = pools.create(config(tenant="t"), item_ids(1), features(1), [], [], idem=idem, max_pools=1)
    assert pools.create(config(tenant="t"), item_ids(1), features(1), [], [], idem=idem, max_pools=1) == (first, None)
