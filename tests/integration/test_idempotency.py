"""Idempotency-Key: a retried create, add-items or teach changes nothing and answers as the first did."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.helpers import ApiClient, items_of


@pytest.fixture
def pool(api):
    X = np.arange(40, dtype=float).reshape(20, 2)
    return api.create_pool(items=items_of(X))


def log_length(redis, pool: str) -> int:
    return redis.xlen(f"sieve:{{{pool}}}:log")


def test_a_replayed_teach_returns_the_first_answer_and_records_nothing_more(api, redis, pool):
    body = {"labels": [{"id": "i1", "label": "a"}, {"id": "i2", "label": "b"}]}
    headers = {"Idempotency-Key": "teach-1"}
    first = api.post(f"/v1/pools/{pool}/teach", json=body, headers=headers)
    again = api.post(f"/v1/pools/{pool}/teach", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert api.status(pool)["labels_version"] == 1 and log_length(redis, pool) == 1


def test_concurrent_replays_of_one_teach_record_it_once(api, redis, pool):
    body = {"labels": [{"id": "i3", "label": "a"}]}
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _: ApiClient(api.base_url).post(
            f"/v1/pools/{pool}/teach", json=body, headers={"Idempotency-Key": "same"}), range(16)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["labels_version"] for a in answers}) == 1
    assert log_length(redis, pool) == 1


def test_the_same_key_with_another_body_is_a_422_and_records_nothing(api, redis, pool):
    api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "a"}]},
             headers={"Idempotency-Key": "k"})
    answer = api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "b"}]},
                      headers={"Idempotency-Key": "k"})
    assert answer.status_code == 422 and answer.json()["field"] == "Idempotency-Key"
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert log_length(redis, pool) == 1 and api.status(pool)["classes_seen"] == {"a": 1}


def test_without_a_key_the_same_teach_twice_is_recorded_twice(api, redis, pool):
    for _ in range(2):
        api.teach(pool, [("i1", "a")])
    assert log_length(redis, pool) == 2 and api.status(pool)["labels_version"] == 2


def test_a_replayed_add_items_returns_the_first_answer_instead_of_a_duplicate_error(api, pool):
    body = {"items": items_of(np.ones((3, 2)), prefix="new")}
    first = api.post(f"/v1/pools/{pool}/items", json=body, headers={"Idempotency-Key": "batch-7"})
    again = api.post(f"/v1/pools/{pool}/items", json=body, headers={"Idempotency-Key": "batch-7"})
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and first.json()["n_items"] == 23
    assert api.status(pool)["n_items"] == 23


def test_a_replayed_create_returns_the_same_pool_and_makes_no_second_one(api):
    body = {"name": "once", "items": items_of(np.ones((4, 2))), "labels": [{"id": "i0", "label": "a"}]}
    first = api.post("/v1/pools", json=body, headers={"Idempotency-Key": "create-1"})
    again = api.post("/v1/pools", json=body, headers={"Idempotency-Key": "create-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["pool_id"] == first.json()["pool_id"]
    assert again.headers["Location"] == first.headers["Location"]
    pools = [p for p in api.get("/v1/pools").json()["pools"] if p["name"] == "once"]
    assert len(pools) == 1 and pools[0]["n_items"] == 4 and pools[0]["labels_version"] == 1
    other = api.post("/v1/pools", json={**body, "name": "twice"}, headers={"Idempotency-Key": "create-1"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"


def test_an_overlong_key_is_rejected_naming_the_header(api, pool):
    answer = api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "a"}]},
                      headers={"Idempotency-Key": "x" * 256})
    assert answer.status_code == 422 and answer.json()["field"] == "Idempotency-Key"
