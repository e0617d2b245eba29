"""`sieve keys` against a real Redis."""

from __future__ import annotations

from click.testing import CliRunner

from sieve.cli import main


def test_keys_list_without_keys_says_auth_is_off(redis_url, redis):
    result = CliRunner().invoke(main, ["keys", "list"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no API keys: auth is off; `sieve keys create --tenant NAME` turns it on"


def test_adopting_moves_only_unowned_pools_with_their_index_entries_and_label_studio_project(redis):
    from sieve.storage.keys import LABELSTUDIO_PROJECTS, POOL_INDEX, PoolKeys, TenantKeys
    from sieve.storage.scripts import Scripts
    from sieve.storage.tenant_index import adopt_unowned

    for pool_id, tenant in (("00aa", ""), ("00bb", "acme")):
        redis.hset(PoolKeys(pool_id).meta, mapping={"tenant": tenant, "n_items": "0"})
        redis.sadd(POOL_INDEX, pool_id)
        redis.zadd(TenantKeys(tenant).pools, {pool_id: 0})
    redis.hset(PoolKeys("00aa").labelstudio, mapping={"project": "7.1", "project_id": "7"})
    redis.hset(LABELSTUDIO_PROJECTS, "/7", "00aa")
    assert adopt_unowned(redis, Scripts.register(redis), "initech") == 1
    assert redis.hget(PoolKeys("00aa").meta, "tenant") == b"initech"
    assert redis.zrange(TenantKeys("").pools, 0, -1) == []
    assert redis.zrange(TenantKeys("initech").pools, 0, -1) == [b"00aa"]
    assert redis.hget(PoolKeys("00bb").meta, "tenant") == b"acme"
    assert redis.zrange(TenantKeys("acme").pools, 0, -1) == [b"00bb"]
    assert redis.hgetall(LABELSTUDIO_PROJECTS) == {b"initech/7": b"00aa"}
    assert adopt_unowned(redis, Scripts.register(redis), "umbrella") == 0
