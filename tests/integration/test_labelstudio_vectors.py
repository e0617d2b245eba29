"""Label Studio projects that are not text (an <Image> with <Choices>): the tasks carry a vector from the
user's encoder in `data.embedding`, and the project runs the same live loop as a text project. Real API,
workers and Redis; Label Studio's side is the recording server of tests/labelstudio_support.py. Refused
setup and predict calls are logged with their reason in the API's own log."""

from __future__ import annotations

import json
import math

import numpy as np

from tests.integration.test_labelstudio import PROJECT, SETUP, ls, pool_of, webhook
from tests.labelstudio_support import FakeLabelStudio
from tests.stack import wait_until

IMAGE_CONFIG = (
    '<View><Image name="image" value="$image"/><Choices name="label" toName="image" choice="single">'
    '<Choice value="Cat"/><Choice value="Dog"/></Choices></View>'
)
IMAGE_SETUP = {**SETUP, "schema": IMAGE_CONFIG}
DIM = 8


def vector(task_id: int) -> list[float]:
    """An embedding as an encoder would give it: cats near one corner, dogs near the other."""
    rng = np.random.default_rng(task_id)
    centre = np.ones(DIM) if task_id % 2 else -np.ones(DIM)
    return (centre + 0.3 * rng.standard_normal(DIM)).round(4).tolist()


def image_task(task_id: int, **data) -> dict:
    return {
        "id": task_id,
        "data": {"image": f"/data/upload/1/{task_id}.jpg", "embedding": vector(task_id), **data},
        "annotations": [],
        "predictions": [],
    }


def predict(api, tasks, project=PROJECT):
    body = {
        "tasks": tasks,
        "project": project,
        "label_config": IMAGE_CONFIG,
        "params": {"login": None, "password": None, "context": None},
    }
    # As Python's json writes it: a NaN the encoder made goes out as the NaN literal, which requests refuses.
    return api.request(
        "POST", "/labelstudio/predict", data=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def annotated(task_id: int, annotation_id: int, label: str) -> dict:
    """ANNOTATION_CREATED as Label Studio sends it for an image project."""
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 1},
        "task": image_task(task_id),
        "annotation": {
            "id": annotation_id,
            "task": task_id,
            "was_cancelled": False,
            "result": [{"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}],
        },
    }


def warnings_in(service_logs, what: str) -> list[dict]:
    """The API's WARNING lines of the Label Studio logger that contain `what`."""
    lines = [json.loads(line) for line in (service_logs / "api.log").read_text().splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line.get("logger") == "sieve.labelstudio"
        and line.get("level") == "WARNING"
        and what in line.get("message", "")
    ]


def test_a_refused_setup_is_logged_at_warning_with_its_reason_and_says_it_in_the_status_line(api, service_logs):
    config = (
        '<View><Image name="image" value="$image"/><RectangleLabels name="box" toName="image">'
        '<Label value="Cat"/></RectangleLabels></View>'
    )
    answer = ls(api, "POST", "/setup", {**SETUP, "project": "41.1795785340", "schema": config})
    assert answer.status_code == 422 and answer.json()["field"] == "schema"
    # Label Studio shows only "422 Client Error: <reason phrase> for url": the reason is Sieve's own.
    assert answer.reason.startswith("schema: Sieve needs a <Choices> tag")
    logged = wait_until(lambda: warnings_in(service_logs, "/labelstudio/setup"), 10, "the refusal in api.log")
    line = next(line for line in logged if line.get("project") == "41.1795785340")
    assert line["field"] == "schema" and line["status"] == 422 and "<Choices>" in line["detail"]
    assert SETUP["access_token"] not in (service_logs / "api.log").read_text()


def test_an_image_project_gets_a_feature_pool_of_its_choices(api):
    answer = ls(api, "POST", "/setup", IMAGE_SETUP)
    assert answer.status_code == 200, answer.text
    status = api.status(pool_of(api))
    assert status["classes"] == ["Cat", "Dog"] and status["featurizer"] is None
    assert status["n_items"] == 0 and status["dimension"] is None
    assert ls(api, "POST", "/setup", IMAGE_SETUP).json() == answer.json()  # found again, not made again
    assert pool_of(api)


def test_predict_adds_image_tasks_with_their_vectors_and_scores_them(api):
    ls(api, "POST", "/setup", IMAGE_SETUP)
    answer = predict(api, [image_task(i) for i in range(1, 7)])
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 6 and all(0 <= r["score"] <= 1 for r in results)
    status = api.status(pool_of(api))
    assert status["n_items"] == 6 and status["dimension"] == DIM


def test_a_task_without_a_readable_vector_is_not_added_and_comes_last(api):
    ls(api, "POST", "/setup", IMAGE_SETUP)
    unreadable = [
        {"id": 11, "data": {"image": "a.jpg"}},  # no vector
        image_task(12, embedding=vector(12)[:-1]),  # another dimension than the pool's
        image_task(13, embedding=[math.nan] + vector(13)[1:]),  # not finite
        image_task(14, embedding=[1e39] + vector(14)[1:]),  # past float32
        image_task(15, embedding=["0.5"] + vector(15)[1:]),  # not numbers
        image_task(16, embedding=[True] * DIM),
    ]
    answer = predict(api, [image_task(1), image_task(2)] + unreadable)
    assert answer.status_code == 200, answer.text
    status = api.status(pool_of(api))
    assert status["n_items"] == 2 and status["dimension"] == DIM
    for result in answer.json()["results"][2:]:
        assert result["score"] == 1.0 and result["result"] == []


def test_an_image_project_whose_tasks_carry_no_vector_is_told_what_is_missing(api, service_logs):
    ls(api, "POST", "/setup", {**IMAGE_SETUP, "project": "42.1795785340"})
    answer = predict(
        api, [{"id": 1, "data": {"image": "a.jpg"}}, {"id": 2, "data": {"image": "b.jpg"}}], project="42.1795785340"
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "tasks[0].data.embedding"
    assert "data.embedding" in problem["detail"] and "vector_field" in problem["detail"]
    assert "image" in problem["detail"]  # what the task does carry
    assert answer.reason.startswith("tasks[0].data.embedding: ")
    logged = wait_until(
        lambda: [
            line for line in warnings_in(service_logs, "/labelstudio/predict") if line.get("project") == "42.1795785340"
        ],
        10,
        "the refusal in api.log",
    )
    assert logged[0]["field"] == "tasks[0].data.embedding"
    # Vectors written as text (as some exports do) are no vectors either, and the answer says what it found.
    answer = predict(
        api, [{"id": 1, "data": {"image": "a.jpg", "embedding": json.dumps(vector(1))}}], project="42.1795785340"
    )
    assert answer.status_code == 422 and answer.json()["field"] == "tasks[0].data.embedding"
    assert "has a str" in answer.json()["detail"]
    # Once a task has brought its vector, a task without one is skipped, as a task without text is.
    assert predict(api, [image_task(3)], project="42.1795785340").status_code == 200
    answer = predict(api, [{"id": 4, "data": {"image": "d.jpg"}}], project="42.1795785340")
    assert answer.status_code == 200 and answer.json()["results"][0]["score"] == 1.0


def test_the_ml_backends_extra_params_name_the_vector_field(api):
    text_config = SETUP["schema"]  # a Text project whose tasks also carry vectors
    answer = ls(api, "POST", "/setup", {**SETUP, "extra_params": {"vector_field": "clip"}})
    assert answer.status_code == 200, answer.text
    tasks = [{"id": i, "data": {"text": f"review {i}", "clip": vector(i)}} for i in (1, 2, 3)]
    body = {"tasks": tasks, "project": PROJECT, "label_config": text_config}
    assert ls(api, "POST", "/predict", body).status_code == 200
    status = api.status(pool_of(api))
    assert status["featurizer"] is None and status["n_items"] == 3 and status["dimension"] == DIM
    # Label Studio's model form sends its extra params box as text.
    again = ls(api, "POST", "/setup", {**SETUP, "extra_params": '{"vector_field": "clip"}'})
    assert again.status_code == 200 and again.json()["model_version"].startswith(f"sieve-{pool_of(api)[:8]}-")
    refused = ls(api, "POST", "/setup", {**SETUP, "extra_params": {"vector_field": ["clip"]}})
    assert refused.status_code == 422 and refused.json()["field"] == "extra_params.vector_field"
    refused = ls(api, "POST", "/setup", {**SETUP, "extra_params": "vector_field=clip"})
    assert refused.status_code == 422 and refused.json()["field"] == "extra_params"
    # The pool keeps its kind: the same project set up as text again is told how to switch.
    switched = ls(api, "POST", "/setup", SETUP)
    assert switched.status_code == 409 and switched.json()["field"] == "schema"


def test_an_image_project_runs_the_live_loop_from_sync_to_push(api):
    with FakeLabelStudio() as fake:
        fake.tasks = [image_task(i) for i in range(1, 21)] + [{"id": 21, "data": {"image": "no-vector.jpg"}}]
        ls(api, "POST", "/setup", {**IMAGE_SETUP, "hostname": fake.url, "access_token": "legacy-token-123"})
        pool = pool_of(api)
        # The sync reads the project's tasks with their vectors; the one without a vector is left out.
        wait_until(lambda: api.status(pool)["n_items"] == 20, 30, "the sync to add the image tasks")
        assert predict(api, fake.tasks[:3]).status_code == 200
        # New tasks come in with their vectors; annotations teach.
        late = {"action": "TASKS_CREATED", "project": {"id": 1}, "tasks": [image_task(22)]}
        fake.tasks.append(image_task(22))
        assert webhook(api, late)["added"] == 1
        fake.tasks.append(image_task(23))  # annotated before Sieve saw it: the event brings its vector
        for annotation_id, (task_id, label) in enumerate(
            [(1, "Cat"), (2, "Dog"), (3, "Cat"), (4, "Dog"), (23, "Cat")], 100
        ):
            assert webhook(api, annotated(task_id, annotation_id, label))["status"] == "ok"
        blind = annotated(24, 200, "Dog")
        del blind["task"]["data"]["embedding"]
        answer = webhook(api, blind)
        assert answer["status"] == "ignored" and "vector in data.embedding" in answer["reason"]
        status = api.wait_idle(pool)
        assert status["n_labeled"] == 5 and status["n_items"] == 22
        version = f"sieve-{pool[:8]}-{status['ranked_version']}"
        patches = wait_until(
            lambda: [r for r in fake.calls("PATCH", fake.PROJECT) if r["body"] == {"model_version": version}],
            30,
            "the push of the new version",
        )
        assert patches[0]["path"] == "/api/projects/1/"
        imports = [r for r in fake.calls("POST", fake.IMPORT) if r["body"][0]["model_version"] == version]
        predictions = imports[-1]["body"]
        assert sorted(p["task"] for p in predictions) == list(range(5, 21)) + [22]  # the unlabeled image tasks
        for p in predictions:
            assert p["result"][0]["from_name"] == "label" and p["result"][0]["to_name"] == "image"
            # The encoder's clusters are learnt: odd tasks are cats.
            assert p["result"][0]["value"]["choices"] == ["Cat" if p["task"] % 2 else "Dog"]


def test_the_reason_in_the_status_line_is_printable_ascii_whatever_the_call_sent(api):
    ls(api, "POST", "/setup", {**IMAGE_SETUP, "project": "43.1795785340"})
    # The answer quotes the task's data fields: here one that would end the status line and add a header.
    answer = predict(api, [{"id": 1, "data": {"x\r\nSet-Cookie: a=b\u00e9": 1}}], project="43.1795785340")
    assert answer.status_code == 422 and "Set-Cookie" not in answer.headers
    assert "x\r\nSet-Cookie: a=b\u00e9" in answer.json()["detail"]
    assert "x Set-Cookie: a=b " in answer.reason and all(" " <= c <= "~" for c in answer.reason)
    assert len(answer.reason) <= 400
