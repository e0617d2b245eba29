"""GET /v1/pools reads only the caller's pools, a page at a time; a tenant holds at most
SIEVE_MAX_POOLS_PER_TENANT pools; pools stored before tenants had indexes still list."""

from __future__ import annotations

import os

import pytest
from redis import Redis

from sieve.embedded import EmbeddedRedis
from sieve.storage.api_keys import ApiKeys
from sieve.storage.keys import POOL_INDEX, TENANT_INDEX_READY, TenantKeys
from sieve.storage.pool_store import PoolConfig, PoolStore
from tests.conftest import SECRET
from tests.helpers import ApiClient

CAP = 5


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A Sieve of its own with keys for three tenants, a cap of CAP pools each, pools of forty other
    tenants, and one pool stored as it was before tenants had indexes."""
    from tests.stack import running_service

    server = EmbeddedRedis(tmp_path_factory.mktemp("listing-redis")).start()
    redis = Redis.from_url(server.url)
    store = PoolStore(redis, pending_ttl_ms=60_000)

    def pool_of(tenant: str, name: str) -> str:
        config = PoolConfig(
            name=name,
            model={"type": "logistic_regression"},
            strategy="margin",
            random_state=0,
            classes=None,
            tenant=tenant,
        )
        return store.create(config, [], None, [], [])[0]

    legacy = pool_of("acme", "stored before tenant indexes")
    for key in [*redis.scan_iter(TenantKeys.EVERY_KEY), TENANT_INDEX_READY]:  # as Redis was before tenant indexes
        redis.delete(key)
    for i in range(40):
        pool_of(f"crowd-{i}", "someone else's")
    tokens = {tenant: ApiKeys(redis).create(tenant, "")[1] for tenant in ("acme", "globex", "initech")}
    env = {**os.environ, "REDIS_URL": server.url, "SIEVE_SECRET_KEY": SECRET, "SIEVE_MAX_POOLS_PER_TENANT": str(CAP)}
    try:
        with running_service(env, tmp_path_factory.mktemp("listing-logs"), workers=0) as url:
            yield {"url": url, "redis": redis, "tokens": tokens, "legacy": legacy}
    finally:
        server.stop()


def client(service, tenant: str) -> ApiClient:
    api = ApiClient(service["url"])
    api.session.headers["Authorization"] = f"Bearer {service['tokens'][tenant]}"
    return api


def listed(api: ApiClient, **params) -> list[str]:
    answer = api.get("/v1/pools", params=params)
    assert answer.status_code == 200, answer.text
    return [p["pool_id"] for p in answer.json()["pools"]]


def test_a_pool_stored_before_tenant_indexes_still_lists_for_its_tenant_only(service):
    assert service["legacy"] in listed(client(service, "acme"))
    assert service["legacy"] not in listed(client(service, "globex"))


def test_listing_reads_only_the_callers_pools(service):
    acme, redis = client(service, "acme"), service["redis"]
    acme.create_pool(name="mine")

    def reads() -> int:
        return redis.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)

    before = reads()
    assert len(listed(acme)) == 2
    # The meta and class counts of each of acme's two pools, nothing of the forty pools of other tenants.
    assert reads() - before <= 4


def test_the_list_comes_in_pages_of_limit_pools_after_a_cursor(service):
    api = client(service, "initech")
    made = sorted(api.create_pool(name=f"paged {i}") for i in range(4))
    first = api.get("/v1/pools", params={"limit": 3}).json()
    assert [p["pool_id"] for p in first["pools"]] == made[:3] and first["next"] == made[2]
    last = api.get("/v1/pools", params={"limit": 3, "after": first["next"]}).json()
    assert [p["pool_id"] for p in last["pools"]] == made[3:] and last["next"] is None
    whole = api.get("/v1/pools").json()
    assert [p["pool_id"] for p in whole["pools"]] == made and whole["next"] is None
    for params, field in [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"after": "not-an-id"}, "after")]:
        answer = api.get("/v1/pools", params=params)
        assert answer.status_code == 422 and answer.json()["field"] == field, params


def test_past_the_cap_a_create_is_a_409_naming_pools_and_writes_nothing(service):
    api, redis = client(service, "globex"), service["redis"]
    made = [api.create_pool(name=f"capped {i}") for i in range(CAP)]
    stored = redis.scard(POOL_INDEX)
    for headers in ({}, {"Idempotency-Key": "one-too-many"}):
        answer = api.post(
            "/v1/pools", json={"name": "one too many", "items": [{"id": "a", "features": [1.0]}]}, headers=headers
        )
        assert answer.status_code == 409 and answer.json()["field"] == "pools"
        assert answer.headers["Content-Type"] == "application/problem+json"
    assert redis.scard(POOL_INDEX) == stored and sorted(listed(api)) == sorted(made)
    assert api.delete(f"/v1/pools/{made[0]}").status_code == 204
    assert made[0] not in listed(api)
    again = api.post("/v1/pools", json={"name": "room again"}, headers={"Idempotency-Key": "one-too-many"})
    assert again.status_code == 201
