"""Leases: what /query returns is reserved for its caller until taught, released or expired."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sieve.storage.keys import PoolKeys
from tests.helpers import ApiClient, items_of


@pytest.fixture
def pool(api):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-1, 1, size=(100, 3)), rng.normal(1, 1, size=(100, 3))])
    pool_id = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "a"}, {"id": "i199", "label": "b"}])
    api.wait_idle(pool_id)
    return pool_id


def ids(answer: dict) -> list[str]:
    return [item["id"] for item in answer["items"]]


def test_two_callers_never_receive_the_same_item_while_leases_live(api, pool):
    first = api.query(pool, k=5)
    second = api.query(pool, k=5)
    assert first["lease"]["expires_at"] > time.time() + 200
    assert len(set(ids(first))) == 5 and not set(ids(first)) & set(ids(second))


def test_many_concurrent_callers_get_pairwise_disjoint_batches(api, pool):
    with ThreadPoolExecutor(16) as threads:
        batches = list(threads.map(lambda _: ids(ApiClient(api.base_url).query(pool, k=5)), range(32)))
    handed_out = [item for batch in batches for item in batch]
    assert len(handed_out) == 160 and len(set(handed_out)) == 160


def test_a_named_annotator_gets_its_own_leased_items_again_and_nobody_else_does(api, pool):
    alice = api.query(pool, k=4, annotator="alice")
    assert alice["lease"]["annotator"] == "alice"
    assert ids(api.query(pool, k=4, annotator="alice")) == ids(alice)
    assert not set(ids(api.query(pool, k=4, annotator="bob"))) & set(ids(alice))


def test_teaching_an_item_ends_its_lease(api, pool, redis):
    leased = ids(api.query(pool, k=3))
    rows = [int(r) for r in redis.hmget(PoolKeys(pool).rows, leased)]
    assert all(redis.zscore(PoolKeys(pool).leases, row) is not None for row in rows)
    api.teach(pool, [(leased[0], "a")])
    assert redis.zscore(PoolKeys(pool).leases, rows[0]) is None
    assert redis.zscore(PoolKeys(pool).leases, rows[1]) is not None


def test_an_expired_lease_puts_the_item_back(api, pool):
    short = ids(api.query(pool, k=3, lease_seconds=0.3))
    assert not set(short) & set(ids(api.query(pool, k=3, lease_seconds=0)))
    time.sleep(0.5)
    assert ids(api.query(pool, k=3, lease_seconds=0)) == short


def test_release_gives_items_back_early_and_a_named_release_touches_only_its_own(api, pool):
    alice = ids(api.query(pool, k=2, annotator="alice"))
    answer = api.post(f"/v1/pools/{pool}/release", json={"ids": alice, "annotator": "bob"})
    assert answer.status_code == 200 and answer.json() == {"released": 0}
    assert not set(alice) & set(ids(api.query(pool, k=2, lease_seconds=0)))
    answer = api.post(f"/v1/pools/{pool}/release", json={"ids": alice, "annotator": "alice"})
    assert answer.json() == {"released": 2}
    assert ids(api.query(pool, k=2, lease_seconds=0)) == alice


def test_lease_seconds_zero_turns_leasing_off(api, pool):
    first = api.query(pool, k=5, lease_seconds=0)
    assert first["lease"] is None
    assert ids(api.query(pool, k=5, lease_seconds=0)) == ids(first)


def test_releasing_unknown_ids_is_a_422_naming_them_and_releases_nothing(api, pool):
    leased = ids(api.query(pool, k=1))
    answer = api.post(f"/v1/pools/{pool}/release", json={"ids": [leased[0], "ghost"]})
    assert answer.status_code == 422 and answer.json()["field"] == "ids[1]"
    assert leased[0] not in ids(api.query(pool, k=5, lease_seconds=0))


def test_items_whose_lease_ended_come_back_in_their_place_in_the_ranking(api, pool):
    ranking = ids(api.query(pool, k=12, lease_seconds=0))
    assert ids(api.query(pool, k=4)) == ranking[:4]
    assert ids(api.query(pool, k=4)) == ranking[4:8]
    api.post(f"/v1/pools/{pool}/release", json={"ids": [ranking[1], ranking[3]]})
    assert ids(api.query(pool, k=4, lease_seconds=0)) == [ranking[1], ranking[3], ranking[8], ranking[9]]


def test_a_named_annotator_gets_its_own_items_back_in_rank_order_among_fresh_ones(api, pool):
    ranking = ids(api.query(pool, k=6, lease_seconds=0))
    assert ids(api.query(pool, k=2, annotator="alice")) == ranking[:2]
    assert ids(api.query(pool, k=2, annotator="bob")) == ranking[2:4]
    assert ids(api.query(pool, k=4, annotator="alice")) == ranking[:2] + ranking[4:6]


def test_leases_outlive_a_new_ranking(api, pool):
    leased = ids(api.query(pool, k=5, annotator="alice"))
    before = api.status(pool)["model_version"]
    api.teach(pool, [("i1", "a"), ("i198", "b")])
    api.wait_idle(pool)
    assert api.status(pool)["model_version"] > before
    assert not set(leased) & set(ids(api.query(pool, k=50, lease_seconds=0)))
