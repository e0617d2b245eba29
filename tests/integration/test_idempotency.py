"""Idempotency-Key: a retried create, add-items or teach changes nothing and answers as the first did."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sieve.storage.keys import POOL_INDEX, PoolKeys
from tests.helpers import ApiClient, items_of
from tests.stack import wait_until


@pytest.fixture
def pool(api):
    X = np.arange(40, dtype=float).reshape(20, 2)
    return api.create_pool(items=items_of(X))


def log_length(redis, pool: str) -> int:
    return redis.xlen(PoolKeys(pool).log)


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
        answers = list(
            threads.map(
                lambda _: ApiClient(api.base_url).post(
                    f"/v1/pools/{pool}/teach", json=body, headers={"Idempotency-Key": "same"}
                ),
                range(16),
            )
        )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["labels_version"] for a in answers}) == 1
    assert log_length(redis, pool) == 1


def test_the_same_key_with_another_body_is_a_422_and_records_nothing(api, redis, pool):
    api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "a"}]}, headers={"Idempotency-Key": "k"})
    answer = api.post(
        f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "b"}]}, headers={"Idempotency-Key": "k"}
    )
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


def test_identical_creates_racing_make_one_pool(api, redis):
    body = {"name": "raced", "items": items_of(np.ones((4, 2))), "labels": [{"id": "i0", "label": "a"}]}
    with ThreadPoolExecutor(8) as threads:
        answers = list(
            threads.map(
                lambda _: ApiClient(api.base_url).post("/v1/pools", json=body, headers={"Idempotency-Key": "raced"}),
                range(16),
            )
        )
    assert {a.status_code for a in answers} == {201}
    (pool,) = {a.json()["pool_id"] for a in answers}
    assert redis.smembers(POOL_INDEX) == {pool.encode()} and log_length(redis, pool) == 1


def test_an_overlong_key_is_rejected_naming_the_header(api, pool):
    answer = api.post(
        f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i1", "label": "a"}]}, headers={"Idempotency-Key": "x" * 256}
    )
    assert answer.status_code == 422 and answer.json()["field"] == "Idempotency-Key"


def test_a_create_replayed_with_another_body_is_a_422_and_writes_nothing(api, redis):
    key = {"Idempotency-Key": "create-then-other-body"}
    first = api.post("/v1/pools", json={"name": "kept empty"}, headers=key)
    assert first.status_code == 201
    pool = first.json()["pool_id"]
    other = api.post(
        "/v1/pools",
        json={"name": "kept empty", "items": items_of(np.ones((3, 2))), "labels": [{"id": "i0", "label": "a"}]},
        headers=key,
    )
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert other.headers["Content-Type"] == "application/problem+json"
    status = api.status(pool)
    assert status["n_items"] == 0 and status["labels_version"] == 0 and status["version"] == 0
    assert log_length(redis, pool) == 0 and redis.smembers(POOL_INDEX) == {pool.encode()}


def _separable(sign: float) -> tuple[dict, dict]:
    """Items on a line whose label is 'pos' where sign * x > 0: one pool's data, or its mirror image."""
    x = np.concatenate([np.linspace(-2, -0.5, 10), np.linspace(0.5, 2, 10)])
    items = {"items": [{"id": f"i{i}", "features": [sign * v]} for i, v in enumerate(x)]}
    labels = {"labels": [{"id": f"i{i}", "label": "pos" if v > 0 else "neg"} for i, v in enumerate(x)]}
    return items, labels


def _trained_on(api, pool: str, sign: float) -> dict:
    """Adds the items, teaches every label and waits for the model of those labels; the teach answer."""
    items, labels = _separable(sign)
    assert api.post(f"/v1/pools/{pool}/items", json=items).status_code == 202
    taught = api.post(f"/v1/pools/{pool}/teach", json=labels)
    assert taught.status_code == 202
    # Seconds, not the ten minutes a refresh job whose id a deleted namesake's job still holds would take.
    wait_until(lambda: api.status(pool)["model_version"] == taught.json()["labels_version"], 30, f"pool {pool}'s model")
    return taught.json()


def _predicts(api, pool: str, x: float) -> str:
    answer = api.post(f"/v1/pools/{pool}/predict", json={"features": [[x]]})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"][0]["predicted_label"]


def test_create_replayed_after_delete_gets_a_new_pool_id_and_a_model_of_its_own_data(api):
    body, key = {"name": "recreated"}, {"Idempotency-Key": "create-delete-create"}
    first = api.post("/v1/pools", json=body, headers=key).json()["pool_id"]
    old_job = _trained_on(api, first, +1.0)["job_id"]
    assert _predicts(api, first, 3.0) == "pos"
    assert api.delete(f"/v1/pools/{first}").status_code == 204

    with ThreadPoolExecutor(8) as threads:
        answers = list(
            threads.map(lambda _: ApiClient(api.base_url).post("/v1/pools", json=body, headers=key), range(8))
        )
    assert {a.status_code for a in answers} == {201}
    made = {a.json()["pool_id"] for a in answers}
    assert len(made) == 1 and first not in made  # racing replays make one pool, never under the old id
    (second,) = made
    assert [p["pool_id"] for p in api.get("/v1/pools").json()["pools"] if p["name"] == "recreated"] == [second]

    # The mirror image of the first pool's data: a model trained on the deleted pool's rows says the opposite.
    _trained_on(api, second, -1.0)
    assert _predicts(api, second, 3.0) == "neg" and _predicts(api, second, -3.0) == "pos"
    gone = api.get(f"/v1/jobs/{old_job}")
    assert gone.status_code == 404 and gone.json()["field"] == "job_id"
    assert api.post("/v1/pools", json=body, headers=key).json()["pool_id"] == second
