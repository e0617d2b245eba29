"""The active-learning loop end to end: real HTTP, real gunicorn, real RQ workers, real Redis."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sieve.storage import job_ids
from sieve.storage.keys import POOL_INDEX, PoolKeys
from tests.helpers import items_of
from tests.storage.support import snapshot


def _blobs(rng, n=60, dim=4):
    X = np.vstack([rng.normal(-2, 1, size=(n // 2, dim)), rng.normal(2, 1, size=(n - n // 2, dim))])
    y = ["neg"] * (n // 2) + ["pos"] * (n - n // 2)
    return X, y


def test_create_pool_answers_201_with_status_and_location(api):
    X, _ = _blobs(np.random.default_rng(0))
    answer = api.post("/v1/pools", json={"name": "blobs", "items": items_of(X)})
    assert answer.status_code == 201
    body = answer.json()
    assert answer.headers["Location"] == f"/v1/pools/{body['pool_id']}"
    assert body["n_items"] == 60 and body["n_labeled"] == 0 and body["n_unlabeled"] == 60
    assert body["model"] == {"type": "logistic_regression", "params": {}}
    assert body["strategy"] == "auto" and body["cold_start"] is True
    assert api.get(answer.headers["Location"]).json()["pool_id"] == body["pool_id"]


def test_cold_pool_serves_a_seeded_random_batch_flagged_cold(api):
    X, _ = _blobs(np.random.default_rng(0))
    first = api.create_pool(items=items_of(X), random_state=7)
    second = api.create_pool(items=items_of(X), random_state=7)
    a = api.query(first, k=5)
    b = api.query(second, k=5)
    assert a["cold_start"] is True and a["model_version"] is None
    assert [i["id"] for i in a["items"]] == [i["id"] for i in b["items"]]
    assert len({i["id"] for i in a["items"]}) == 5
    assert all(i["predicted_label"] is None for i in a["items"])


def test_teach_then_query_serves_a_model_ranking_that_excludes_labeled_items(api):
    X, y = _blobs(np.random.default_rng(1))
    pool = api.create_pool(items=items_of(X), random_state=0)
    taught = api.teach(pool, [("i0", "neg"), ("i59", "pos")])
    assert taught["accepted"] == 2 and taught["labels_version"] == 1
    answer = api.query(pool, k=10, strategy="margin", wait=20)
    assert answer["cold_start"] is False
    assert answer["model_version"] == answer["labels_version"] == answer["ranked_labels_version"] == 1
    ids = [i["id"] for i in answer["items"]]
    assert "i0" not in ids and "i59" not in ids and len(ids) == 10
    scores = [i["score"] for i in answer["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in answer["items"]:
        assert set(item["probabilities"]) == {"neg", "pos"}
        assert sum(item["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert item["predicted_label"] == max(item["probabilities"], key=item["probabilities"].get)


def test_query_never_returns_an_item_taught_after_the_ranking_was_built(api):
    X, y = _blobs(np.random.default_rng(2))
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "neg"}, {"id": "i59", "label": "pos"}])
    api.wait_idle(pool)
    top = [i["id"] for i in api.query(pool, k=5)["items"]]
    api.teach(pool, [(top[0], y[int(top[0][1:])]), (top[1], y[int(top[1][1:])])])
    # Without waiting: the ranking may be old, but what was just taught must not come back.
    again = [i["id"] for i in api.query(pool, k=5)["items"]]
    assert top[0] not in again and top[1] not in again


def test_k_larger_than_the_unlabeled_count_returns_what_there_is(api):
    X, y = _blobs(np.random.default_rng(3), n=12)
    pool = api.create_pool(items=items_of(X), labels=[{"id": f"i{i}", "label": y[i]} for i in range(10)])
    answer = api.query(pool, k=100, wait=20)
    assert sorted(i["id"] for i in answer["items"]) == ["i10", "i11"]


def test_relabeling_replaces_the_label_and_the_log_keeps_both(api, redis):
    X, y = _blobs(np.random.default_rng(4))
    pool = api.create_pool(items=items_of(X))
    api.teach(pool, [("i0", "neg")])
    api.teach(pool, [("i0", "pos")])
    status = api.status(pool)
    assert status["n_labeled"] == 1 and status["classes_seen"] == {"pos": 1} and status["labels_version"] == 2
    log = redis.xrange(PoolKeys(pool).log)
    assert [entry[b"labels"] for _, entry in log] == [b'["neg"]', b'["pos"]']


def test_add_items_joins_the_ranking_after_the_next_refresh(api):
    X, y = _blobs(np.random.default_rng(5))
    pool = api.create_pool(items=items_of(X[:40]), labels=[{"id": "i0", "label": "neg"}, {"id": "i39", "label": "pos"}])
    answer = api.post(f"/v1/pools/{pool}/items", json={"items": items_of(X[40:], prefix="new")})
    assert answer.status_code == 202 and answer.json()["added"] == 20 and answer.json()["n_items"] == 60
    api.wait_idle(pool)
    ranked = {i["id"] for i in api.query(pool, k=58)["items"]}
    assert len(ranked) == 58 and {f"new{i}" for i in range(20)} <= ranked


def test_predict_answers_with_the_current_model_or_409_before_one_exists(api):
    X, y = _blobs(np.random.default_rng(6))
    pool = api.create_pool(items=items_of(X))
    early = api.post(f"/v1/pools/{pool}/predict", json={"features": [[0, 0, 0, 0]]})
    assert early.status_code == 409
    assert early.headers["Content-Type"] == "application/problem+json"
    api.teach(pool, [(f"i{i}", y[i]) for i in range(0, 60, 3)])
    api.wait_idle(pool)
    by_features = api.post(f"/v1/pools/{pool}/predict", json={"features": [[-3] * 4, [3] * 4]}).json()
    assert [p["predicted_label"] for p in by_features["predictions"]] == ["neg", "pos"]
    assert by_features["model_version"] == 1
    by_ids = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["i1", "i58"]}).json()
    assert [p["predicted_label"] for p in by_ids["predictions"]] == ["neg", "pos"]


def test_a_burst_of_teach_calls_is_coalesced_and_the_last_retrain_sees_every_label(api, redis):
    from rq.registry import FinishedJobRegistry

    from sieve.job_queue import worker_queues
    from sieve.settings import Settings

    rng = np.random.default_rng(7)
    X, y = _blobs(rng, n=200)
    pool = api.create_pool(items=items_of(X))
    api.wait_idle(pool)
    order = rng.permutation(200)
    for n in range(50):
        row = int(order[n])
        api.teach(pool, [(f"i{row}", y[row])])
    status = api.wait_idle(pool)
    assert status["labels_version"] == 50 and status["model_version"] == 50 and status["n_labeled"] == 50
    finished = [
        job_id
        for queue in worker_queues(redis, Settings())
        for job_id in FinishedJobRegistry(queue=queue).get_job_ids()
    ]
    runs = [job_id for job_id in finished if job_id.startswith(job_ids.refresh_prefix(pool))]
    print(f"{len(runs)} refresh runs for 50 teach calls")
    assert 1 <= len(runs) < 25, runs


def test_a_refresh_run_again_changes_nothing(api, redis, settings):
    from rq import Queue
    from rq.serializers import JSONSerializer

    X, y = _blobs(np.random.default_rng(8))
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "neg"}, {"id": "i59", "label": "pos"}])
    api.wait_idle(pool)
    before = snapshot(redis, PoolKeys(pool).every_key)
    queue = Queue("sieve", connection=redis, serializer=JSONSerializer)
    job = queue.enqueue_call(
        "sieve.workers.refresh_job.refresh_pool", args=[pool], job_id=f"{job_ids.refresh_prefix(pool)}again"
    )
    for _ in range(600):
        if job.get_status(refresh=True).value in ("finished", "failed"):
            break
        time.sleep(0.05)
    assert job.get_status().value == "finished"
    assert job.return_value()["outcome"] == "up to date"
    after = snapshot(redis, PoolKeys(pool).every_key)
    assert after == before


def test_deleting_a_pool_leaves_no_key_behind(api, redis):
    X, y = _blobs(np.random.default_rng(9))
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "neg"}, {"id": "i59", "label": "pos"}])
    api.wait_idle(pool)
    assert list(redis.scan_iter(PoolKeys(pool).every_key))
    assert api.delete(f"/v1/pools/{pool}").status_code == 204
    # Only RQ's own job records (which expire by themselves) may still name the pool.
    assert [key for key in redis.scan_iter(f"*{pool}*") if not key.startswith(b"rq:")] == []
    assert not redis.sismember(POOL_INDEX, pool)
    assert api.get(f"/v1/pools/{pool}").status_code == 404


def test_the_query_answer_is_exactly_what_its_schema_would_dump(api):
    from sieve.service.pool_schemas import QueryAnswerSchema

    X, y = _blobs(np.random.default_rng(10))
    for labels in ([], [{"id": "i0", "label": "neg"}, {"id": "i59", "label": "pos"}]):
        pool = api.create_pool(items=items_of(X), labels=labels)
        answer = api.query(pool, k=5, wait=20)
        assert answer["cold_start"] is (not labels)
        assert QueryAnswerSchema().dump(answer) == answer


def test_a_pool_created_without_a_body_is_empty_and_answers_queries_at_once(api):
    created = api.post("/v1/pools")
    assert created.status_code == 201 and created.json()["n_items"] == 0
    started = time.monotonic()
    answer = api.query(created.json()["pool_id"], k=5)
    assert answer["items"] == [] and answer["cold_start"] is True
    assert time.monotonic() - started < 2


def test_a_pool_with_standardize_predicts_as_the_scaled_model_fitted_in_process(api):
    from sieve.core.estimators import build_estimator

    rng = np.random.default_rng(5)
    X, y = _blobs(rng)
    X = (X * [1.0, 1000.0, 0.001, 50.0]).astype(np.float32)
    labeled = [0, 1, 2, 57, 58, 59]
    spec = {"type": "logistic_regression", "params": {}, "standardize": True}
    answer = api.post(
        "/v1/pools",
        json={
            "items": items_of(X),
            "model": spec,
            "random_state": 3,
            "labels": [{"id": f"i{i}", "label": y[i]} for i in labeled],
        },
    )
    assert answer.status_code == 201 and answer.json()["model"] == spec
    pool = answer.json()["pool_id"]
    api.query(pool, k=1, wait=20)
    predicted = api.post(f"/v1/pools/{pool}/predict", json={"features": X.tolist()}).json()["predictions"]
    model = build_estimator(spec, random_state=3).fit(X[labeled].astype(np.float64), [y[i] for i in labeled])
    expected = model.predict_proba(X.astype(np.float64))
    np.testing.assert_allclose(
        [[p["probabilities"][c] for c in model.classes_] for p in predicted], expected, rtol=1e-5, atol=1e-7
    )
