"""Callers racing on one pool, each with its own connection: scripts keep the pool consistent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from redis import Redis

from sieve.storage import features as feature_storage
from sieve.storage.features import read_rows
from sieve.storage.keys import PoolKeys
from sieve.storage.pool_store import PoolStore
from sieve.storage.rankings import read_top
from sieve.storage.scripts import Scripts
from tests.storage.support import PENDING_TTL_MS, config, make_pool, meta_of, rank


def test_racing_additions_each_land_once_with_their_own_rows(db, pools, storage_redis_url, monkeypatch):
    # Small chunks: a call that cut its rows for another pool size than the script finds would put them in
    # the wrong chunk.
    monkeypatch.setattr(feature_storage, "ROWS_PER_CHUNK", 8)
    pool_id, _ = pools.create(config(), [], None, [], [])

    def add(worker: int) -> None:
        store = PoolStore(Redis.from_url(storage_redis_url), PENDING_TTL_MS)
        for i in range(25):
            value = worker * 100 + i
            store.add_items(pool_id, [f"w{value}"], np.full((1, 2), value, dtype=np.float32))

    with ThreadPoolExecutor(4) as threads:
        list(threads.map(add, range(4)))
    keys = PoolKeys(pool_id)
    assert (meta_of(pools, pool_id)["n_items"], meta_of(pools, pool_id)["chunk_rows"]) == ("100", "8")
    rows = read_rows(db, keys, 0, 100, 2, 8)
    ids = {int(row): item.decode() for row, item in db.hgetall(keys.ids).items()}
    # Every row holds the features its id came with.
    assert sorted(ids) == list(range(100))
    assert all(rows[row, 0] == int(item[1:]) for row, item in ids.items())
    assert {int(v) for v in db.hgetall(keys.rows).values()} == set(range(100))


def test_racing_queries_never_hand_one_item_to_two_callers(db, pools, refresh, storage_redis_url):
    pool_id = make_pool(pools, n=120)
    rank(refresh, pool_id, list(range(120)))

    def take(_) -> list[str]:
        client = Redis.from_url(storage_redis_url)
        scripts, got = Scripts.register(client), []
        # Anonymous callers: a named annotator would get its own leases again.
        while ids := read_top(client, scripts, pool_id, 3, None, lease_ms=60_000).ids:
            got += ids
        return got

    with ThreadPoolExecutor(6) as threads:
        handed = list(threads.map(take, range(6)))
    every = [item for items in handed for item in items]
    assert len(every) == len(set(every)) == 120


def test_racing_teach_calls_queue_one_refresh_and_count_every_label(db, pools, storage_redis_url):
    pool_id = make_pool(pools, n=60)
    db.delete(PoolKeys(pool_id).pending)

    def teach(n: int) -> str | None:
        store = PoolStore(Redis.from_url(storage_redis_url), PENDING_TTL_MS)
        return store.teach(pool_id, [f"i{n}"], ["a" if n % 2 else "b"]).job_id

    with ThreadPoolExecutor(6) as threads:
        jobs = [job for job in threads.map(teach, range(60)) if job]
    assert len(jobs) == 1
    meta = meta_of(pools, pool_id)
    assert (meta["n_labeled"], meta["labels_version"], meta["version"]) == ("60", "60", "61")
    assert db.hgetall(PoolKeys(pool_id).class_counts) == {b'"a"': b"30", b'"b"': b"30"}
    assert db.bitcount(PoolKeys(pool_id).labeled) == 60
