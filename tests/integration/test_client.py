"""sieve.client against a real stack: retries apply once, 202s are polled, problems are raised, keys are sent."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import requests
from requests.adapters import HTTPAdapter

from sieve.client import ApiError, Client, StillPending
from sieve.storage.api_keys import ApiKeys
from sieve.storage.keys import PoolKeys
from tests.helpers import items_of
from tests.stack import Stack, hermetic_env


class LosesTheFirstAnswer(HTTPAdapter):
    """Sends each request for real, but drops the answer to the first one whose path ends with `suffix`, as a
    connection cut after the API applied the call would; records every request it sent."""

    def __init__(self, suffix: str):
        super().__init__()
        self.suffix, self.lost, self.sent = suffix, False, []

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        self.sent.append(request)
        if not self.lost and request.path_url.split("?")[0].endswith(self.suffix):
            self.lost = True
            raise requests.ConnectionError("the answer was lost")
        return response


def _client(url: str, adapter: HTTPAdapter) -> Client:
    session = requests.Session()
    session.mount("http://", adapter)
    return Client(url, session=session, backoff=0.01)


def _blobs(n: int = 60):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(-3, 1, size=(n // 2, 2)), rng.normal(3, 1, size=(n // 2, 2))])
    return X, ["a"] * (n // 2) + ["b"] * (n // 2)


def log_length(redis, pool: str) -> int:
    return redis.xlen(PoolKeys(pool).log)


def test_a_teach_whose_answer_was_lost_is_retried_under_the_same_key_and_recorded_once(live_url, redis):
    lossy = LosesTheFirstAnswer("/teach")
    client = _client(live_url, lossy)
    X, _ = _blobs()
    pool = client.create_pool(items_of(X))["pool_id"]

    answer = client.teach(pool, [("i1", "a"), ("i2", "b")])

    teach_calls = [r for r in lossy.sent if r.path_url.endswith("/teach")]
    assert len(teach_calls) == 2, "the call was not retried"
    keys = {r.headers["Idempotency-Key"] for r in teach_calls}
    assert len(keys) == 1 and teach_calls[0].body == teach_calls[1].body
    assert answer["labels_version"] == 1 and answer["accepted"] == 2
    assert client.status(pool)["labels_version"] == 1 and log_length(redis, pool) == 1
    # Another call is another key: the same labels taught again are recorded again.
    assert client.teach(pool, [("i1", "a"), ("i2", "b")])["labels_version"] == 2


def test_a_create_whose_answer_was_lost_makes_one_pool(live_url, redis):
    lossy = LosesTheFirstAnswer("/v1/pools")
    client = _client(live_url, lossy)
    X, y = _blobs()
    created = client.create_pool(items_of(X), [("i0", "a")], name="once")
    assert len([r for r in lossy.sent if r.method == "POST"]) == 2
    assert [p["pool_id"] for p in client.iter_pools()] == [created["pool_id"]]


def test_a_leasing_query_whose_answer_was_lost_is_not_repeated(live_url, redis):
    """A repeat would lease k more items that nobody gets to see until their leases end."""
    lossy = LosesTheFirstAnswer("/query")
    client = _client(live_url, lossy)
    X, _ = _blobs()
    pool = client.create_pool(items_of(X))["pool_id"]
    with pytest.raises(requests.ConnectionError):
        client.query(pool, k=3, wait=20)
    assert len([r for r in lossy.sent if "/query" in r.path_url]) == 1


def test_a_query_for_a_named_annotator_is_repeated_and_gets_the_same_items(live_url, redis):
    lossy = LosesTheFirstAnswer("/query")
    client = _client(live_url, lossy)
    X, _ = _blobs()
    pool = client.create_pool(items_of(X))["pool_id"]
    answer = client.query(pool, k=3, wait=20, annotator="ann")
    assert len([r for r in lossy.sent if "/query" in r.path_url]) == 2
    again = Client(live_url).query(pool, k=3, annotator="ann")
    assert [i["id"] for i in again["items"]] == [i["id"] for i in answer["items"]]


def test_problems_are_raised_with_their_status_detail_and_fields(live_url, redis):
    client = Client(live_url)
    with pytest.raises(ApiError) as refused:
        client.create_pool([{"id": "x", "features": [1.0, float("nan")]}])
    error = refused.value
    assert error.status == 422 and error.title == "Unprocessable Entity"
    assert error.field.startswith("items") and error.errors and error.errors[0]["field"] == error.field
    assert error.detail and error.request_id and error.problem["status"] == 422
    with pytest.raises(ApiError) as missing:
        client.status("0123456789abcdef")
    assert missing.value.status == 404 and "does not exist" in missing.value.detail


def test_the_loop_through_the_client(live_url, redis):
    client = Client(live_url)
    X, y = _blobs()
    labels = dict(zip([f"i{i}" for i in range(len(y))], y))
    pool = client.create_pool(items_of(X[:50]), {"i0": "a", "i49": "b"}, name="loop", random_state=1)["pool_id"]
    assert client.add_items(pool, items_of(X)[50:])["n_items"] == 60
    taught = client.teach(pool, {"i1": "a", "i58": "b", "i2": "a", "i57": "b"})
    assert client.wait_for_model(pool, taught["labels_version"], timeout=60)["model_version"] >= 2
    if taught["job_id"]:  # null when a refresh queued before covers these labels
        assert client.wait_for_job(taught["job_id"], timeout=60)["status"] == "finished"
    assert client.teach(pool, {"i3": "a", "i56": "b"}, split="eval")["accepted"] == 2
    status = client.wait_idle(pool, timeout=60)
    assert status["n_eval"] == 2 and status["n_labeled"] == 6

    with client.leased(pool, k=4, annotator="ann", wait=20) as batch:
        picked = [item["id"] for item in batch["items"]]
        client.teach(pool, {picked[0]: labels[picked[0]]})
    # The items not taught were released on leaving: another annotator gets them at once.
    other = client.query(pool, k=60, annotator="bob", wait=20)
    assert set(picked[1:]) <= {item["id"] for item in other["items"]}
    assert picked[0] not in {item["id"] for item in other["items"]}
    assert client.release(pool, [item["id"] for item in other["items"]], annotator="bob")["released"] == len(
        other["items"]
    )

    assert client.unlabel(pool, [picked[0]])["removed"] == 1
    predicted = client.predict(pool, ids=["i0", "i59"])["predictions"]
    assert [p["predicted_label"] for p in predicted] == ["a", "b"]
    assert len(client.predict(pool, features=np.array([[-3.0, -3.0]]))["predictions"]) == 1
    assert client.set_stopping(pool, {"budget": 100})["stopping"]["budget"] == 100
    assert client.history(pool)["versions"]
    assert client.learning_curve(pool, "svg").startswith(b"<?xml")
    client.delete_pool(pool)
    with pytest.raises(ApiError) as gone:
        client.status(pool)
    assert gone.value.status == 404


@pytest.fixture
def keyed_stack(tmp_path):
    """A stack of its own, without workers, whose API never waits for a ranking and requires API keys."""
    with Stack(tmp_path, env=hermetic_env(SIEVE_FIRST_RANKING_WAIT="0"), workers=0) as stack:
        _, token = ApiKeys(stack.redis()).create("acme", "client tests")
        yield stack, token


def test_the_api_key_is_sent_and_a_pending_query_is_polled_until_a_worker_ranks_the_pool(keyed_stack):
    stack, token = keyed_stack
    with pytest.raises(ApiError) as anonymous:
        Client(stack.api_url).list_pools()
    assert anonymous.value.status == 401

    client = Client(stack.api_url, api_key=token)
    X, _ = _blobs()
    pool = client.create_pool(items_of(X))["pool_id"]
    with pytest.raises(StillPending) as pending:
        client.query(pool, k=3, pending_timeout=0)
    assert pending.value.job_id and client.job(pending.value.job_id)["status"] == "queued"

    answers = []
    asking = threading.Thread(target=lambda: answers.append(client.query(pool, k=3, pending_timeout=60)))
    asking.start()
    stack.start_worker()
    asking.join(90)
    assert answers and len(answers[0]["items"]) == 3
    assert [p["pool_id"] for p in client.iter_pools()] == [pool]
