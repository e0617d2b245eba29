"""API keys and Label Studio links in Redis (storage.api_keys, storage.link_store): no scripts, a few
transactions."""

from __future__ import annotations

from sieve.storage.api_keys import ApiKeys
from sieve.storage.keys import LABELSTUDIO_PROJECTS, PoolKeys
from sieve.storage.link_store import Link, LinkStore
from tests.storage.support import make_pool, snapshot


def test_a_key_names_its_tenant_until_revoked_and_keys_stay_required(db):
    keys = ApiKeys(db)
    assert not keys.required()
    key, token = keys.create("acme", name="ci")
    snap = snapshot(db)
    other, _ = keys.create("zeta")
    assert keys.required()
    assert keys.tenant_of(token) == "acme"
    assert keys.tenant_of(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert keys.tenant_of("sk_000000000000_" + "x" * 30) is None
    assert keys.tenant_of("not a key") is None
    assert [k.key_id for k in keys.list()] == [key.key_id, other.key_id]
    assert keys.revoke(key.key_id) and not keys.revoke(key.key_id)
    assert keys.tenant_of(token) is None
    # Revoking every key locks the API rather than opening it.
    keys.revoke(other.key_id)
    assert keys.required()
    # Redis keeps a digest of each secret, never the secret.
    assert token.split("_", 2)[2] not in repr(snap)


def _link(pool_id: str, project: str = "7.1700000000", **changes) -> Link:
    fields = dict(pool_id=pool_id, project=project, project_id=7, from_name="sentiment", to_name="text", field="text")
    fields.update(changes)
    return Link(**fields)


def test_a_saved_link_is_found_by_its_project_while_its_pool_exists(db, pools):
    pool_id = make_pool(pools, n=1)
    links = LinkStore(db)
    links.save(_link(pool_id, hostname="http://ls:8080", token="secret"), tenant="t")
    assert db.hget(LABELSTUDIO_PROJECTS, "t/7") == pool_id.encode()
    assert links.find("t", "7.1700000000", 7) == _link(pool_id, hostname="http://ls:8080", token="secret")
    assert links.find("t", "7.1800000000", 7) is None  # another Label Studio database's project 7
    assert links.find("u", "7.1700000000", 7) is None
    assert links.pools("t") == [pool_id] and links.pools("u") == []
    pools.delete(pool_id)
    assert links.find("t", "7.1700000000", 7) is None


def test_a_token_is_dropped_when_the_link_moves_to_another_origin_without_one(db, pools):
    pool_id = make_pool(pools, n=1)
    links = LinkStore(db)
    links.save(_link(pool_id, hostname="http://ls:8080", token="secret"), tenant="t")
    links.save(_link(pool_id), tenant="t")  # a setup without host or token keeps both
    assert links.load(pool_id).token == "secret"
    links.save(_link(pool_id, hostname="http://other:8080"), tenant="t")
    assert links.load(pool_id).token == ""
    assert not db.hexists(PoolKeys(pool_id).labelstudio, "token")


def test_a_project_keeps_its_live_pool_and_a_new_project_of_the_same_id_takes_another(db, pools):
    first, second = make_pool(pools, n=1), make_pool(pools, n=1)
    links = LinkStore(db)
    assert links.claim("t", "7.1", 7, first) == first
    links.save(_link(first, project="7.1"), tenant="t")
    assert links.claim("t", "7.1", 7, second) == first
    assert links.claim("t", "7.2", 7, second) == second
    assert links.pool_of("t", 7) == second


def test_forgetting_annotations_gives_each_task_its_latest_remaining_label(db, pools):
    pool_id = make_pool(pools, n=1)
    links = LinkStore(db)
    links.remember(pool_id, 1, "task-a", '"x"')
    links.remember(pool_id, 2, "task-a", '"y"')
    links.remember(pool_id, 3, "task-a", '"z"')
    links.remember(pool_id, 4, "task-b", '"x"')
    assert links.forget(pool_id, [3, 4, 99]) == {"task-a": '"y"', "task-b": None}
    assert links.annotations(pool_id) == {"1": ("task-a", '"x"'), "2": ("task-a", '"y"')}
    assert links.forget(pool_id, [99]) == {}
