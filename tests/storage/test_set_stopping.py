"""Script set_stopping (through PoolStore.set_stopping): the policy and its recommendation change as one."""

from __future__ import annotations

import json

import pytest

from sieve.core.errors import NotFound
from sieve.core.stopping import StoppingPolicy
from sieve.storage.keys import PoolKeys
from tests.storage.support import make_pool, meta_of, snapshot


def test_a_new_policy_is_stored_with_its_recommendation_as_one_change(db, pools):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    db.delete(keys.pending)
    # Two models whose predictions agreed: the plateau is reached over a window of one round, not of three.
    db.hset(keys.history, "1", json.dumps({"model_version": 1, "n_labels": 2, "kappa_with_previous": None}))
    db.hset(keys.history, "2", json.dumps({"model_version": 2, "n_labels": 3, "kappa_with_previous": 0.995}))
    job_id = pools.set_stopping(pool_id, StoppingPolicy(window=1, budget=5, enforce_budget=True))
    assert job_id == f"refresh-{pool_id}-2" == db.get(keys.pending).decode()
    meta = meta_of(pools, pool_id)
    assert json.loads(meta["stopping"])["plateau"] == {"kappa": 0.99, "window": 1, "gain": 0.01, "labels": 100}
    assert (meta["budget"], meta["enforce_budget"], meta["version"]) == ("5", "1", "2")
    assert json.loads(meta["stop"])["recommended"]
    db.delete(keys.pending)
    pools.set_stopping(pool_id, StoppingPolicy(window=3))
    meta = meta_of(pools, pool_id)
    assert (meta["budget"], meta["enforce_budget"], meta["version"]) == ("", "0", "3")
    assert json.loads(meta["stop"]) == {"recommended": False, "reasons": []}


def test_the_policy_the_pool_has_changes_nothing(db, pools):
    pool_id = make_pool(pools)
    pools.set_stopping(pool_id, StoppingPolicy(budget=3))
    db.delete(PoolKeys(pool_id).pending)
    before = snapshot(db)
    assert pools.set_stopping(pool_id, StoppingPolicy(budget=3)) is None
    assert snapshot(db) == before


def test_a_deleted_pool_gets_no_policy(db, pools):
    pool_id = make_pool(pools)
    pools.delete(pool_id)
    with pytest.raises(NotFound):
        pools.set_stopping(pool_id, StoppingPolicy(budget=3))
    assert db.dbsize() == 0
