"""Scripts index_pool and adopt_pool (through storage.tenant_index), and listing a tenant's pools."""

from __future__ import annotations

from sieve.storage.keys import LABELSTUDIO_PROJECTS, POOL_INDEX, TENANT_INDEX_READY, PoolKeys, TenantKeys
from sieve.storage.tenant_index import adopt_unowned, backfill
from tests.storage.support import make_pool, meta_of


def members(db, tenant: str) -> list[str]:
    return [x.decode() for x in db.zrange(TenantKeys(tenant).pools, 0, -1)]


def test_a_tenants_pools_are_listed_in_id_order_page_by_page(db, pools):
    made = sorted(make_pool(pools, n=1, tenant="t") for _ in range(5))
    make_pool(pools, n=1, tenant="other")
    page, after = pools.list_page("t", "", 2)
    assert (page, after) == (made[:2], made[1])
    page, after = pools.list_page("t", after, 2)
    assert (page, after) == (made[2:4], made[3])
    assert pools.list_page("t", after, 2) == (made[4:], None)
    assert pools.list_page("t", "", 5) == (made, None)
    assert pools.list_page("nobody", "", 5) == ([], None)


def _unindexed(db, pools, tenant: str) -> str:
    """A pool as stored before tenants had indexes: in `sieve:pools` only."""
    pool_id = make_pool(pools, n=1, tenant=tenant)
    db.zrem(TenantKeys(tenant).pools, pool_id)
    return pool_id


def test_backfill_enters_every_pool_in_its_tenants_index_once(db, pools, scripts):
    mine, theirs, unowned = _unindexed(db, pools, "a"), _unindexed(db, pools, "b"), _unindexed(db, pools, "")
    assert backfill(db, scripts) == 3
    assert (members(db, "a"), members(db, "b"), members(db, "")) == ([mine], [theirs], [unowned])
    assert db.exists(TENANT_INDEX_READY)
    _unindexed(db, pools, "a")
    assert backfill(db, scripts) == 0  # done once per Redis
    assert len(members(db, "a")) == 1


def test_index_pool_enters_no_deleted_pool_and_none_in_another_tenants_index(db, pools, scripts):
    pool_id = _unindexed(db, pools, "a")
    assert scripts.index_pool(keys=[PoolKeys(pool_id).meta, TenantKeys("b").pools], args=[pool_id, "b"]) == 0
    db.delete(PoolKeys(pool_id).meta)
    assert scripts.index_pool(keys=[PoolKeys(pool_id).meta, TenantKeys("a").pools], args=[pool_id, "a"]) == 0
    assert not db.exists(TenantKeys("a").pools, TenantKeys("b").pools)


def test_adopting_gives_the_unowned_pools_to_the_tenant(db, pools, scripts):
    unowned, unindexed = make_pool(pools, n=1), _unindexed(db, pools, "")
    owned = make_pool(pools, n=1, tenant="b")
    assert adopt_unowned(db, scripts, "a") == 2
    assert sorted(members(db, "a")) == sorted([unowned, unindexed])
    assert (members(db, ""), members(db, "b")) == ([], [owned])
    assert meta_of(pools, unowned)["tenant"] == meta_of(pools, unindexed)["tenant"] == "a"
    assert meta_of(pools, owned)["tenant"] == "b"
    assert adopt_unowned(db, scripts, "c") == 0


def test_adopting_moves_the_pools_label_studio_project_entry(db, pools, scripts):
    linked, other = make_pool(pools, n=1), make_pool(pools, n=1)
    db.hset(PoolKeys(linked).labelstudio, "project_id", "7")
    db.hset(LABELSTUDIO_PROJECTS, mapping={"/7": linked, "/8": "elsewhere"})
    db.hset(PoolKeys(other).labelstudio, "project_id", "8")  # the entry names another pool: left alone
    assert adopt_unowned(db, scripts, "a") == 2
    assert db.hgetall(LABELSTUDIO_PROJECTS) == {b"a/7": linked.encode(), b"/8": b"elsewhere"}


def test_adopt_pool_leaves_a_deleted_or_owned_pool_alone(db, pools, scripts):
    pool_id = make_pool(pools, n=1, tenant="b")
    keys = PoolKeys(pool_id)
    args = dict(
        keys=[keys.meta, TenantKeys("").pools, TenantKeys("a").pools, keys.labelstudio, LABELSTUDIO_PROJECTS],
        args=[pool_id, "a"],
    )
    assert scripts.adopt_pool(**args) == 0
    pools.delete(pool_id)
    assert scripts.adopt_pool(**args) == 0
    assert db.dbsize() == 0
    assert not db.sismember(POOL_INDEX, pool_id)
