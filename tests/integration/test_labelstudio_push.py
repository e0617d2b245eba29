"""The live loop: after each retrain a real worker pushes the new predictions to Label Studio (here a small
real HTTP server that records them) and makes the project follow the new model version."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from tests.integration.test_labelstudio import PREDICT, SETUP, event, ls, pool_of, webhook
from tests.labelstudio_support import FakeLabelStudio
from tests.stack import wait_until


def _wait_for(check, what: str = "Label Studio to be called"):
    return wait_until(check, 30, what)


def _model_version_set(fake, version: str) -> list:
    """The PATCHes that set the project's model version to `version`, once one came."""
    return _wait_for(
        lambda: [r for r in fake.calls("PATCH", fake.PROJECT) if r["body"] == {"model_version": version}],
        f"the project's model version {version}",
    )


def _settled_version(api, pool: str) -> str:
    """The model version Label Studio is told about once the pool's retrains have settled."""
    return _version(pool, api.wait_idle(pool))


def _version(pool: str, status: dict) -> str:
    return f"sieve-{pool[:8]}-{status['ranked_version']}"


def _imports(fake, version: str) -> list:
    """The prediction imports made for `version`."""
    return [r for r in fake.calls("POST", fake.IMPORT) if r["body"][0]["model_version"] == version]


def _connect(api, fake, token: str = "legacy-token-123") -> str:
    ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": token})
    ls(api, "POST", "/predict", PREDICT)
    webhook(api, event("ANNOTATION_UPDATED"))  # task 3: Positive
    negative = event("ANNOTATION_CREATED")
    negative["annotation"]["result"][0]["value"]["choices"] = ["Negative"]
    webhook(api, negative)  # task 4: Negative
    return pool_of(api)


def test_each_retrain_pushes_predictions_in_sieves_order_then_the_model_version(api):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        version = _settled_version(api, pool)
        patch = _model_version_set(fake, version)
        assert patch[0]["path"] == "/api/projects/1/" and patch[0]["authorization"] == "Token legacy-token-123"
        imports = _imports(fake, version)
        assert len(imports) == 1 and imports[0]["path"] == "/api/projects/1/import/predictions"
        assert fake.requests.index(imports[0]) < fake.requests.index(patch[0])  # Label Studio checks the version exists
        predictions = imports[0]["body"]
        assert sorted(p["task"] for p in predictions) == [1, 2, 5, 6]  # the unlabeled tasks
        for p in predictions:
            assert p["result"][0]["value"]["choices"][0] in ("Positive", "Negative") and 0 <= p["score"] <= 1
        # Label Studio's queue takes the lowest score first: that is Sieve's most informative first.
        lowest_first = [str(p["task"]) for p in sorted(predictions, key=lambda p: p["score"])]
        assert lowest_first == [i["id"] for i in api.query(pool, k=10, lease_seconds=0)["items"]]


def test_a_label_studio_that_fails_fails_the_push_never_the_refresh_and_start_training_retries_it(api):
    with FakeLabelStudio() as fake:
        fake.fail = True
        pool = _connect(api, fake)
        status = api.wait_idle(pool)
        assert status["retrain"]["last_error"] is None and status["model_version"] == status["labels_version"]
        job = job_ids.push(pool, status["ranked_version"])
        _wait_for(lambda: api.get(f"/v1/jobs/{job}").json().get("status") == "failed")
        assert "legacy-token-123" not in api.get(f"/v1/jobs/{job}").text
        fake.fail = False
        answer = webhook(api, event("START_TRAINING"))
        assert answer["status"] == "ok" and answer["job_id"].startswith(job_ids.prefix(job_ids.TRAIN, pool))
        version = _version(pool, status)
        _model_version_set(fake, version)


def test_tasks_added_later_are_pushed_with_the_next_retrain(api):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        api.wait_idle(pool)
        tasks = {
            "action": "TASKS_CREATED",
            "project": event("START_TRAINING")["project"],
            "tasks": [{"id": 77, "data": {"text": "a late task"}}],
        }
        assert webhook(api, tasks)["added"] == 1
        version = _settled_version(api, pool)
        imports = _wait_for(lambda: _imports(fake, version))
        assert 77 in {p["task"] for p in imports[0]["body"]}


def test_start_training_queues_the_retrain_a_lost_change_needs(api, redis):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        # The workers' sweeper, every 5 s, asks again for lost refreshes too: when one of its passes comes
        # between the lost change and the START_TRAINING job, the job finds the refresh already asked for.
        # The job's own path is then tried again with a new lost change.
        for _ in range(5):
            before = api.wait_idle(pool)
            # A change whose refresh was lost, as when the API dies between its script and its enqueue.
            redis.hincrby(PoolKeys(pool).meta, "version", 1)
            answer = webhook(api, event("START_TRAINING"))
            job = _wait_for(
                lambda: (lambda j: j if j.get("status") == "finished" else None)(
                    api.get(f"/v1/jobs/{answer['job_id']}").json()
                )
            )
            assert api.wait_idle(pool)["ranked_version"] == before["ranked_version"] + 1
            if "refresh" in job["result"]:
                break
        assert job["result"]["outcome"] == "retraining"
        assert job["result"]["refresh"].startswith(job_ids.refresh_prefix(pool))


def test_setup_reads_the_tasks_and_labels_label_studio_already_has(api):
    with FakeLabelStudio() as fake:
        texts = ["great", "awful", "fine", "superb", "dreadful"] * 110  # 550 tasks: two pages
        fake.tasks = [{"id": i + 1, "data": {"text": f"{t} {i}"}, "annotations": []} for i, t in enumerate(texts)]
        fake.tasks[0]["annotations"] = [
            {
                "id": 11,
                "result": [
                    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}
                ],
            }
        ]
        fake.tasks[1]["annotations"] = [{"id": 12, "was_cancelled": True, "result": []}]
        fake.tasks[4]["annotations"] = [
            {
                "id": 15,
                "result": [
                    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Negative"]}}
                ],
            }
        ]
        fake.tasks[5]["data"] = {"other": "no text"}
        ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "legacy-token-123"})
        pool = pool_of(api)
        status = _wait_for(
            lambda: (lambda s: s if s["n_items"] == 549 and s["n_labeled"] == 2 else None)(api.status(pool))
        )
        assert status["classes_seen"] == {"Negative": 1, "Positive": 1}
        pages = fake.calls("GET", re.compile(r"^/api/tasks/"))
        assert [parse_qs(urlsplit(p["path"]).query)["page"] for p in pages] == [["1"], ["2"]]
        assert all(p["authorization"] == "Token legacy-token-123" for p in pages)
        # With labels of two classes, the retrain's push follows: the live loop is running.
        version = _settled_version(api, pool)
        _model_version_set(fake, version)


def test_deleted_tasks_lose_their_labels_and_get_no_more_predictions(api):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        api.wait_idle(pool)
        deleted = webhook(
            api,
            {
                "action": "TASKS_DELETED",
                "project": event("START_TRAINING")["project"],
                "tasks": [{"id": 3}, {"id": 5}, {"id": 999}],
            },
        )
        assert deleted["deleted"] == 2 and deleted["unlabeled"] == 1  # task 3 was labeled
        webhook(api, event("ANNOTATION_CREATED"))  # a change, so a retrain and a push follow
        version = _settled_version(api, pool)
        imports = _wait_for(lambda: _imports(fake, version))
        assert sorted(p["task"] for p in imports[0]["body"]) == [1, 2, 6]


def test_a_task_deleted_without_a_webhook_is_found_and_left_out_of_the_push(api, redis):
    with FakeLabelStudio() as fake:
        fake.tasks = [{"id": i, "data": {"text": "x"}, "annotations": []} for i in (1, 2, 3, 4, 5)]  # task 6 is gone
        for task, annotation, label in ((3, 1, "Positive"), (4, 2, "Negative")):  # as the webhooks say
            fake.tasks[task - 1]["annotations"] = [
                {
                    "id": annotation,
                    "result": [
                        {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
                    ],
                }
            ]
        pool = _connect(api, fake)
        version = _settled_version(api, pool)
        _model_version_set(fake, version)
        accepted = _imports(fake, version)[-1]
        assert sorted(p["task"] for p in accepted["body"]) == [1, 2, 5]
        assert redis.smembers(PoolKeys(pool).ls_deleted) == {b"6"}


def test_many_annotations_at_once_teach_their_tasks(api):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        choice = lambda label: [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",  # noqa: E731
                "value": {"choices": [label]},
            }
        ]
        body = {
            "action": "ANNOTATIONS_CREATED",
            "project": event("START_TRAINING")["project"],
            "annotation": [
                {"id": 40, "task": 1, "result": choice("Positive")},
                {"id": 41, "task": 50, "result": choice("Negative")},
                {"id": 42, "task": 2, "result": [], "was_cancelled": True},
            ],
            "task": [
                {"id": 1, "data": {"text": "I love this product"}},
                {"id": 50, "data": {"text": "a task Sieve had not seen"}},
            ],
        }
        assert webhook(api, body)["labeled"] == 2
        status = api.status(pool)
        assert status["n_items"] == 7 and status["n_labeled"] == 4


def test_a_personal_access_token_is_traded_for_an_access_token(api):
    with FakeLabelStudio() as fake:
        pool = _connect(api, fake, token="header.payload.signature")
        version = _settled_version(api, pool)
        patch = _model_version_set(fake, version)
        assert patch[0]["authorization"] == "Bearer access-for-header.payload.signature"
        refresh = fake.calls("POST", re.compile(r"^/api/token/refresh/$"))
        assert refresh and refresh[0]["body"] == {"refresh": "header.payload.signature"}
