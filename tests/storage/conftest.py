"""Storage tests: the Lua scripts and their Python callers against a real Redis, with no API and no workers.

The folder has a Redis server of its own: the rest of the suite runs workers and sweepers on the shared
one, which would claim, recover or sweep the pools these tests set up. Each test starts from an empty
database, so a test can compare the whole of Redis before and after a refused call.
"""

from __future__ import annotations

import pytest
from redis import Redis

from sieve.embedded import EmbeddedRedis
from sieve.storage.pool_store import PoolStore
from sieve.storage.refresh import RefreshStore
from sieve.storage.scripts import Scripts
from tests.storage.support import PENDING_TTL_MS


@pytest.fixture(scope="session")
def storage_redis_url(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("storage-redis"), appendfsync="no").start()
    yield server.url
    server.stop()


@pytest.fixture
def db(storage_redis_url):
    client = Redis.from_url(storage_redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def pools(db) -> PoolStore:
    return PoolStore(db, pending_ttl_ms=PENDING_TTL_MS)


@pytest.fixture
def refresh(db) -> RefreshStore:
    return RefreshStore(db)


@pytest.fixture
def scripts(db) -> Scripts:
    return Scripts.register(db)
