"""Feature storage end to end: chunks stay under Redis's limits at any dimension, and an addition that
is refused leaves the pool as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieve.core.errors import InvalidInput
from sieve.core.items import ItemBatch
from sieve.core.text import featurize, normalize_featurizer
from sieve.storage import pool_store as storage_pools
from sieve.storage.features import read_selected_sparse_rows, read_sparse_rows, sparse_payloads
from sieve.storage.keys import ANY_POOL, POOL_INDEX, PoolKeys
from sieve.use_cases import Pools, PoolSpec
from tests.helpers import items_of

REDIS_MAX_STRING_BYTES = 512 * 1024 * 1024
"""Redis's default proto-max-bulk-len: no string value may grow past it."""

WORDS = [
    "great",
    "film",
    "boring",
    "story",
    "acting",
    "loved",
    "hated",
    "dull",
    "wonderful",
    "awful",
    "plot",
    "music",
    "scene",
    "actor",
    "ending",
    "slow",
    "funny",
    "sad",
    "long",
    "short",
]


def _texts(n: int, start: int = 0) -> list[dict]:
    rng = np.random.default_rng(start)
    return [
        {"id": f"t{start + i}", "text": " ".join(rng.choice(WORDS, size=8)) + f" review{start + i}"} for i in range(n)
    ]


def test_a_text_pool_of_8192_columns_takes_20000_texts_and_keeps_retraining(api, redis):
    created = api.post("/v1/pools", json={"items": _texts(10_000), "featurizer": {"n_features": 8192}})
    assert created.status_code == 201, created.text
    pool = created.json()["pool_id"]
    added = api.post(f"/v1/pools/{pool}/items", json={"items": _texts(10_000, start=10_000)})
    assert added.status_code == 202, added.text
    assert added.json()["n_items"] == 20_000
    assert api.status(pool)["n_items"] == 20_000
    assert redis.hlen(PoolKeys(pool).rows) == 20_000 and redis.hlen(PoolKeys(pool).ids) == 20_000
    # Items of both batches can be taught, and the model fits on them.
    api.teach(pool, [("t3", "a"), ("t15000", "b"), ("t19999", "a"), ("t7", "b")])
    status = api.wait_idle(pool, timeout=240)
    assert status["retrain"]["last_error"] is None
    assert status["model_version"] == status["labels_version"] == 1
    query = api.query(pool, k=5)
    assert len(query["items"]) == 5 and query["cold_start"] is False
    predicted = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["t15001", "t2"]})
    assert predicted.status_code == 200, predicted.text


def test_an_addition_refused_by_a_limit_leaves_ids_and_n_items_unchanged(api, redis):
    pool = api.create_pool(items=items_of(np.ones((2, 2048), dtype=np.float32)))
    keys = PoolKeys(pool)
    # A pool whose chunk has almost reached Redis's limit on one string (as one stored with 65,536 rows per
    # chunk at this dimension would): appending more rows to it cannot succeed.
    redis.hdel(keys.meta, "chunk_rows", "n_values")
    redis.setrange(keys.chunk(0), REDIS_MAX_STRING_BYTES - 2048 * 4, b"\0")
    before = api.status(pool)
    refused = api.post(f"/v1/pools/{pool}/items", json={"items": items_of(np.ones((4, 2048)), prefix="new")})
    assert 400 <= refused.status_code < 500, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["field"] == "items"
    after = api.status(pool)
    assert after["n_items"] == before["n_items"] == 2 and after["version"] == before["version"]
    assert redis.hlen(keys.rows) == 2 and redis.hlen(keys.ids) == 2
    assert redis.strlen(keys.chunk(0)) == REDIS_MAX_STRING_BYTES - 2048 * 4 + 1
    # The ids of the refused call are not in the pool: a later call may add them.
    redis.delete(keys.chunk(0))
    redis.append(keys.chunk(0), np.ones((2, 2048), dtype="<f4").tobytes())
    again = api.post(f"/v1/pools/{pool}/items", json={"items": items_of(np.ones((4, 2048)), prefix="new")})
    assert again.status_code == 202, again.text
    assert api.status(pool)["n_items"] == 6


def test_items_past_a_text_pools_nonzero_limit_are_refused_and_leave_it_unchanged(redis, settings, monkeypatch):
    monkeypatch.setattr(storage_pools, "MAX_POOL_NONZEROS", 40, raising=False)
    pools = Pools(redis, settings)
    pool = pools.create(
        PoolSpec(featurizer={"n_features": 64}), ItemBatch(ids=["a", "b"], texts=["one two three", "four five"])
    )
    keys = PoolKeys(pool)
    assert redis.hget(keys.meta, "n_values") == b"5"
    many = ItemBatch(ids=["c", "d"], texts=[" ".join(f"w{i}" for i in range(30))] * 2)
    with pytest.raises(InvalidInput) as refused:
        pools.add_items(pool, many)  # the path Label Studio's new tasks take too
    assert refused.value.field == "items"
    assert pools.status(pool)["n_items"] == 2 and redis.hlen(keys.rows) == 2
    assert redis.hget(keys.meta, "n_values") == b"5"
    assert pools.add_items(pool, ItemBatch(ids=["c"], texts=["six seven"])).n_items == 3


def test_a_create_past_the_value_limit_writes_nothing(redis, settings):
    pools = Pools(redis, settings.with_overrides(max_pool_values=100))
    before = redis.smembers(POOL_INDEX)
    with pytest.raises(InvalidInput) as refused:
        pools.create(PoolSpec(), ItemBatch(ids=[f"i{n}" for n in range(30)], features=np.ones((30, 4), np.float32)))
    assert refused.value.field == "items"
    assert redis.smembers(POOL_INDEX) == before
    pool = pools.create(PoolSpec(), ItemBatch(ids=[f"i{n}" for n in range(20)], features=np.ones((20, 4), np.float32)))
    with pytest.raises(InvalidInput):
        pools.add_items(pool, ItemBatch(ids=[f"j{n}" for n in range(6)], features=np.ones((6, 4), np.float32)))
    assert pools.status(pool)["n_items"] == 20 and redis.hlen(PoolKeys(pool).rows) == 20


@pytest.mark.parametrize("model", [None, {"type": "gaussian_nb"}])
def test_a_text_pool_stored_dense_with_the_old_chunk_geometry_keeps_working(api, redis, settings, model):
    # As a text pool was stored before: dense float32 rows, 65,536 rows per chunk, no layout or chunk_rows.
    # Its model was fitted on dense rows, so a model that takes no sparse ones (GaussianNB, without tf-idf)
    # must get the featurized texts of /predict dense too.
    spec = normalize_featurizer({"n_features": 64, "tfidf": False})
    texts = ["great fun film", "dull boring film", "great great cast", "boring plot"]
    pool = Pools(redis, settings).create(
        PoolSpec(model=model), ItemBatch(ids=["a", "b", "c", "d"], features=featurize(texts, spec).toarray())
    )
    keys = PoolKeys(pool)
    redis.hset(keys.meta, "featurizer", json.dumps(spec))
    redis.hdel(keys.meta, "chunk_rows", "n_values")
    added = api.post(
        f"/v1/pools/{pool}/items",
        json={"items": [{"id": "e", "text": "fun great film"}, {"id": "f", "text": "dull plot"}]},
    )
    assert added.status_code == 202, added.text
    assert redis.strlen(keys.chunk(0)) == 6 * 64 * 4 and not redis.exists(*keys.sparse_chunk(0))
    api.teach(pool, [("a", "pos"), ("b", "neg")])
    assert api.wait_idle(pool)["retrain"]["last_error"] is None
    by_ids = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["e", "f"]})
    by_texts = api.post(f"/v1/pools/{pool}/predict", json={"texts": ["fun great film", "dull plot"]})
    assert by_ids.status_code == by_texts.status_code == 200, (by_ids.text, by_texts.text)
    from_ids, from_texts = by_ids.json()["predictions"], by_texts.json()["predictions"]
    assert [p.pop("id") for p in from_ids] == ["e", "f"] and [p.pop("id") for p in from_texts] == [None, None]
    assert from_ids == from_texts


def test_a_create_whose_labels_a_pool_cannot_hold_writes_nothing(api, redis):
    before = redis.smembers(POOL_INDEX)
    n = 1001  # one class more than a pool may have
    refused = api.post(
        "/v1/pools",
        json={
            "items": [{"id": f"i{i}", "features": [float(i)]} for i in range(n)],
            "labels": [{"id": f"i{i}", "label": f"c{i}"} for i in range(n)],
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "labels"
    assert redis.smembers(POOL_INDEX) == before
    assert not list(redis.scan_iter(ANY_POOL.meta))


def test_sparse_rows_read_back_exactly_across_chunks_and_empty_rows(redis):
    keys = PoolKeys("roundtrip")
    texts = ["one two", "", "three", "four five six", "", "seven"] * 4
    rows = featurize(texts, normalize_featurizer({"n_features": 64}))
    for first, stop in [(0, 7), (7, 24)]:  # two appends, the second starting inside a chunk
        for chunk, *payloads in sparse_payloads(first, rows[first:stop], chunk_rows=5):
            for key, data in zip(keys.sparse_chunk(chunk), payloads):
                redis.append(key, data)
    assert (read_sparse_rows(redis, keys, 0, 24, 64, 5) != rows).nnz == 0
    assert (read_sparse_rows(redis, keys, 3, 12, 64, 5) != rows[3:12]).nnz == 0
    picked = [23, 1, 0, 9, 4, 10, 16]
    assert (read_selected_sparse_rows(redis, keys, picked, 64, 5) != rows[picked]).nnz == 0
