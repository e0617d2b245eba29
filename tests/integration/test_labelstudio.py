"""Label Studio's ML-backend protocol, replayed from requests Label Studio 1.23.2 really sent, against the
real app (gunicorn), real workers and a real Redis."""

from __future__ import annotations

import copy
import time

import pytest

from sieve.storage.keys import PoolKeys
from tests.labelstudio_support import captured, one

PROJECT = "1.1795785340"
SETUP = one("04_repredict_after_version_bump.jsonl", "/setup")["body"]
PREDICT = one("04_repredict_after_version_bump.jsonl", "/predict")["body"]


def pool_of(api, project_id: int = 1) -> str:
    """The pool serving a Label Studio project, found by its name."""
    pools = [p for p in api.get("/v1/pools").json()["pools"] if p["name"] == f"Label Studio project {project_id}"]
    assert len(pools) == 1, pools
    return pools[0]["pool_id"]


def ls(api, method, path, body=None, **kwargs):
    return api.request(method, f"/labelstudio{path}", json=body, **kwargs)


def webhook(api, body):
    started = time.monotonic()
    answer = ls(api, "POST", "/webhook", body)
    assert answer.status_code == 200 and time.monotonic() - started < 1, answer.text
    return answer.json()


def event(action: str) -> dict:
    return copy.deepcopy(one("05_update_training_delete.jsonl", "/webhook", action)["body"])


@pytest.fixture
def connected(api):
    """The project set up and its six tasks in the pool, as after Label Studio's first predict call."""
    assert ls(api, "POST", "/setup", SETUP).status_code == 200
    assert ls(api, "POST", "/predict", PREDICT).status_code == 200
    return api


def test_health_and_versions_answer_json_at_once(api):
    for entry in captured("04_repredict_after_version_bump.jsonl") + captured("03_train_versions_predicttest.jsonl"):
        if entry["method"] == "GET":
            started = time.monotonic()
            answer = ls(api, "GET", entry["path"])
            assert answer.status_code == 200 and time.monotonic() - started < 1
            assert isinstance(answer.json(), dict)
    assert ls(api, "GET", "/versions").json() == {"versions": []}


def test_setup_creates_the_projects_text_pool_once(api):
    first = ls(api, "POST", "/setup", SETUP)
    assert first.status_code == 200, first.text
    assert first.json() == {"model_version": f"sieve-{pool_of(api)[:8]}-0"}
    assert ls(api, "POST", "/setup", SETUP).json() == first.json()  # Label Studio sets up again and again
    status = api.status(pool_of(api))
    assert status["classes"] == ["Positive", "Negative"] and status["featurizer"]["type"] == "hashing"
    assert status["name"] == "Label Studio project 1" and status["n_items"] == 0
    assert ls(api, "GET", "/versions").json() == {"versions": [f"sieve-{pool_of(api)[:8]}-0"]}


def test_setup_never_answers_the_token(api, redis):
    answer = ls(api, "POST", "/setup", SETUP)
    assert SETUP["access_token"] not in answer.text
    assert redis.hget(PoolKeys(pool_of(api)).labelstudio, "token") == SETUP["access_token"].encode()


def test_predict_adds_unseen_tasks_and_answers_one_result_per_task_in_order(api):
    ls(api, "POST", "/setup", SETUP)
    answer = ls(api, "POST", "/predict", PREDICT)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == len(PREDICT["tasks"])
    assert api.status(pool_of(api))["n_items"] == len(PREDICT["tasks"])
    for result in results:
        # No model yet: no label, but a score in the order of the pool's seeded random ranking.
        assert result["result"] == [] and 0 <= result["score"] <= 1
        assert result["model_version"].startswith(f"sieve-{pool_of(api)[:8]}-")


def test_predict_teaches_the_annotations_its_tasks_already_have_once(api):
    ls(api, "POST", "/setup", SETUP)
    ls(api, "POST", "/predict", PREDICT)  # task 3 carries annotation 1: Negative
    status = api.status(pool_of(api))
    assert status["classes_seen"] == {"Negative": 1} and status["labels_version"] == 1
    ls(api, "POST", "/predict", PREDICT)
    assert api.status(pool_of(api))["labels_version"] == 1


def test_predict_before_any_setup_creates_the_pool_from_its_label_config(api):
    body = copy.deepcopy(one("03_train_versions_predicttest.jsonl", "/predict")["body"])
    answer = ls(api, "POST", "/predict", body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["results"]) == 1 and api.status(pool_of(api))["n_items"] == 1


def test_webhooks_teach_relabel_and_unlabel(connected):
    api = connected
    updated = webhook(api, event("ANNOTATION_UPDATED"))
    assert updated["status"] == "ok" and updated["labeled"] == {"3": "Positive"}
    created = webhook(api, event("ANNOTATION_CREATED"))
    assert created["labeled"] == {"4": "Positive"}
    relabel = event("ANNOTATION_UPDATED")
    relabel["annotation"]["result"][0]["value"]["choices"] = ["Negative"]
    webhook(api, relabel)
    assert api.status(pool_of(api))["classes_seen"] == {"Negative": 1, "Positive": 1}
    deleted = webhook(api, event("ANNOTATIONS_DELETED"))  # annotation 1 labeled task 3
    assert deleted["unlabeled"] == ["3"]
    status = api.status(pool_of(api))
    assert status["n_labeled"] == 1 and status["classes_seen"] == {"Positive": 1}


def test_the_model_labels_tasks_and_scores_them_by_the_pools_strategy(connected):
    api = connected
    webhook(api, event("ANNOTATION_UPDATED"))  # task 3: Positive
    negative = event("ANNOTATION_CREATED")
    negative["annotation"]["result"][0]["value"]["choices"] = ["Negative"]
    webhook(api, negative)  # task 4: Negative
    pool = pool_of(api)
    status = api.wait_idle(pool)
    results = ls(api, "POST", "/predict", PREDICT).json()["results"]
    assert all(r["result"][0]["from_name"] == "sentiment" and r["result"][0]["to_name"] == "text" for r in results)
    assert all(r["result"][0]["type"] == "choices" for r in results)
    assert {r["model_version"] for r in results} == {f"sieve-{pool[:8]}-{status['ranked_version']}"}
    # Label Studio takes the lowest score first; Sieve's query the most informative first: the same order.
    by_score = sorted((r["score"], t["id"]) for r, t in zip(results, PREDICT["tasks"]) if t["id"] not in (3, 4))
    query = api.query(pool, k=10, lease_seconds=0)
    assert [str(t) for _, t in by_score] == [i["id"] for i in query["items"]]
    # The pool's strategy, auto, picks batches: its scores are places in its order, the first one 0.
    scores = [score for score, _ in by_score]
    assert scores[0] == 0.0 and all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) == len(scores)


def test_start_training_and_other_events_are_acknowledged(connected):
    api = connected
    assert webhook(api, event("START_TRAINING"))["status"] == "ok"
    assert webhook(api, event("PROJECT_UPDATED"))["status"] == "ignored"
    assert webhook(api, one("03_train_versions_predicttest.jsonl", "/webhook")["body"])["status"] == "ok"


def test_tasks_created_adds_the_tasks_with_text(connected):
    api = connected
    body = {
        "action": "TASKS_CREATED",
        "project": event("START_TRAINING")["project"],
        "tasks": [
            {"id": 101, "data": {"text": "new and shiny"}},
            {"id": 102, "data": {"image": "x.png"}},
            {"id": 1, "data": {"text": "already there"}},
            "not a task",
            {"id": "103"},
        ],
    }
    assert webhook(api, body)["added"] == 1
    assert api.status(pool_of(api))["n_items"] == len(PREDICT["tasks"]) + 1


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {},
        {"action": 3},
        {"action": "ANNOTATION_CREATED"},
        {"action": "ANNOTATION_CREATED", "project": {"id": 1}},
        {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": "x"},
        {"action": "ANNOTATIONS_DELETED", "project": {"id": 1}, "annotations": [None, {}]},
        {"action": "TASKS_CREATED", "project": 1, "tasks": {"id": 1}},
    ],
    ids=[
        "null",
        "list",
        "string",
        "empty",
        "numeric-action",
        "no-project",
        "no-annotation",
        "annotation-not-object",
        "odd-deletions",
        "tasks-not-list",
    ],
)
def test_a_webhook_of_any_shape_gets_a_2xx(connected, body):
    before = connected.status(pool_of(connected))
    answer = webhook(connected, body)
    assert answer["status"] in ("ok", "ignored")
    assert connected.status(pool_of(connected))["labels_version"] == before["labels_version"]


def test_a_webhook_body_that_is_not_json_gets_a_2xx(api):
    answer = api.post("/labelstudio/webhook", data=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"


def test_an_annotation_without_choices_or_cancelled_leaves_no_label(connected):
    api = connected
    webhook(api, event("ANNOTATION_CREATED"))  # annotation 2 labels task 4
    empty = event("ANNOTATION_CREATED")
    empty["annotation"].update(id=9, task=5, result=[])
    assert webhook(api, empty)["status"] == "ok"
    cancelled = event("ANNOTATION_UPDATED")
    cancelled["annotation"].update(id=2, task=4, was_cancelled=True)
    assert webhook(api, cancelled)["unlabeled"] == ["4"]
    assert api.status(pool_of(api))["classes_seen"] == {"Negative": 1}  # task 3, labeled before Sieve came


def test_an_annotation_of_a_task_sieve_has_not_seen_adds_it_from_the_event(api):
    body = copy.deepcopy(one("07_basic_auth_stub.jsonl", "/webhook")["body"])  # project 2, task 8
    setup = {**SETUP, "project": "2.1795785419"}
    ls(api, "POST", "/setup", setup)
    answer = webhook(api, body)
    assert answer["labeled"] == {"8": "Positive"}
    status = api.status(pool_of(api, 2))
    assert status["n_items"] == 1 and status["n_labeled"] == 1
    no_text = copy.deepcopy(body)
    no_text["annotation"]["task"] = no_text["task"]["id"] = 9
    no_text["task"]["data"] = {}
    assert webhook(api, no_text)["status"] == "ignored"


def test_a_label_outside_the_config_and_an_unknown_or_deleted_project_are_ignored(connected):
    api = connected
    odd = event("ANNOTATION_CREATED")
    odd["annotation"]["result"][0]["value"]["choices"] = ["Neutral"]
    assert webhook(api, odd)["status"] == "ignored"
    stranger = event("ANNOTATION_CREATED")
    stranger["project"]["id"] = 77
    assert webhook(api, stranger) == {"status": "ignored", "reason": "this project is not connected to Sieve"}
    assert api.delete(f"/v1/pools/{pool_of(api)}").status_code == 204
    assert webhook(api, event("ANNOTATION_CREATED"))["status"] == "ignored"


@pytest.mark.parametrize(
    "path,body,field",
    [
        ("/setup", {"project": "1.2", "schema": "<View><Text name='t' value='$t'/></View>"}, "schema"),
        ("/setup", {"project": "1.2", "schema": "<View"}, "schema"),
        ("/setup", {"project": "1.2", "schema": '<!DOCTYPE v [<!ENTITY a "b">]><View>&a;</View>'}, "schema"),
        ("/setup", {"project": None, "schema": SETUP["schema"]}, "project"),
        ("/setup", ["not", "an", "object"], "body"),
        ("/predict", {"tasks": "x", "project": PROJECT}, "tasks"),
        ("/predict", {"tasks": [], "project": "x", "label_config": SETUP["schema"]}, "project"),
        ("/predict", {"tasks": [{"id": 1}], "project": "5.1", "label_config": 3}, "label_config"),
    ],
)
def test_bad_setup_and_predict_calls_are_problems_naming_the_field(api, path, body, field):
    answer = ls(api, "POST", path, body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json" and answer.json()["field"] == field


def test_a_task_without_the_text_field_gets_an_empty_result_last_in_the_queue(connected):
    body = copy.deepcopy(PREDICT)
    body["tasks"] = [{"id": 50, "data": {"title": "no text here"}}, body["tasks"][0], {"data": {}}]
    results = ls(connected, "POST", "/predict", body).json()["results"]
    assert len(results) == 3 and results[0]["result"] == [] and results[0]["score"] == 1.0
    assert results[2]["score"] == 1.0
    assert connected.status(pool_of(connected))["n_items"] == len(PREDICT["tasks"])


def test_deleting_the_pool_deletes_its_link_token_and_annotations(connected, redis):
    api = connected
    pool = pool_of(api)
    webhook(api, event("ANNOTATION_CREATED"))
    assert redis.exists(PoolKeys(pool).labelstudio, PoolKeys(pool).ls_annotations) == 2
    assert api.delete(f"/v1/pools/{pool}").status_code == 204
    assert redis.exists(PoolKeys(pool).labelstudio, PoolKeys(pool).ls_annotations) == 0
    # Label Studio sets up again: a new pool, and the project's tasks join it with the next predict.
    assert ls(api, "POST", "/setup", SETUP).status_code == 200
    assert pool_of(api) != pool
    ls(api, "POST", "/predict", PREDICT)
    assert api.status(pool_of(api))["n_items"] == len(PREDICT["tasks"])
