"""Where Sieve's workers may send requests: only to the Label Studio origins the operator allows
(SIEVE_LABELSTUDIO_ORIGINS, here the recording servers' origins), never elsewhere, never along a redirect,
never with another origin's token; and a project's tasks are read in a bounded number of pages."""

from __future__ import annotations

import re

import pytest
from rq.job import Job

from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from tests.integration.test_labelstudio import SETUP, connected, event, ls, pool_of, webhook  # noqa: F401
from tests.integration.test_labelstudio_push import _connect, _model_version_set, _settled_version, _wait_for
from tests.labelstudio_support import FakeLabelStudio

TASKS = re.compile(r"^/api/tasks/")


def _sync_job(api, redis, pool: str) -> dict:
    """The finished (or failed) job that read the project's tasks after its setup."""

    def done():
        ids = [
            k.decode().split(":")[-1] for k in redis.scan_iter(Job.key_for(f"{job_ids.prefix(job_ids.SYNC, pool)}*"))
        ]
        jobs = [api.get(f"/v1/jobs/{i}").json() for i in ids]
        return next((j for j in jobs if j.get("status") in ("finished", "failed")), None)

    return _wait_for(done, "the sync job to end")


def _next_push(api, pool: str) -> dict:
    """A new label (task 1: Negative), so a retrain and its push follow: the push job, once it ended."""
    label = event("ANNOTATION_CREATED")
    label["annotation"].update(id=9001, task=1)
    label["annotation"]["result"][0]["value"]["choices"] = ["Negative"]
    label["task"]["id"] = 1
    assert webhook(api, label)["status"] == "ok"
    job_id = job_ids.push(pool, api.wait_idle(pool)["ranked_version"])
    return _wait_for(
        lambda: (lambda j: j if j.get("status") in ("finished", "failed") else None)(
            api.get(f"/v1/jobs/{job_id}").json()
        ),
        "the push to end",
    )


def test_an_allowed_origin_is_called_with_its_token(api, redis):
    with FakeLabelStudio() as fake:
        fake.tasks = [{"id": i, "data": {"text": f"task {i}"}} for i in range(1, 4)]
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url + "/", "access_token": "tok-a"}).ok
        pool = pool_of(api)
        assert _sync_job(api, redis, pool)["result"]["outcome"] == "synced"
        assert all(r["authorization"] == "Token tok-a" for r in fake.calls("GET", TASKS))
        assert redis.hget(PoolKeys(pool).labelstudio, "hostname") == fake.url.encode()


@pytest.mark.parametrize(
    "hostname",
    [
        "{other}",
        "{allowed}/api/projects/1/?x=",
        "{allowed}?page=1",
        "{allowed}#top",
        "http://user:pass@{allowed_host}",
        "http://169.254.169.254",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "{allowed}\t",
    ],
    ids=[
        "another-origin",
        "a-path",
        "a-query",
        "a-fragment",
        "userinfo",
        "metadata-address",
        "metadata-path",
        "another-scheme",
        "a-tab",
    ],
)
def test_a_setup_naming_anything_but_an_allowed_origin_is_a_422_and_nothing_is_called(api, redis, hostname):
    with FakeLabelStudio() as allowed, FakeLabelStudio(allowed=False) as other:
        name = hostname.format(other=other.url, allowed=allowed.url, allowed_host=allowed.url.split("//")[1])
        answer = ls(api, "POST", "/setup", {**SETUP, "hostname": name, "access_token": "tok-a"})
        assert answer.status_code == 422 and answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["field"] == "hostname" and "SIEVE_LABELSTUDIO_ORIGINS" in answer.text, answer.text
        assert api.get("/v1/pools").json()["pools"] == []  # nothing recorded, so no job can call anyone
        # The allowed origin, set up afterwards, is read; the other server still has heard nothing.
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": allowed.url, "access_token": "tok-a"}).ok
        _sync_job(api, redis, pool_of(api))
        assert other.requests == [] and allowed.calls("GET", TASKS)


def test_a_stored_origin_no_longer_allowed_is_not_called(api, redis):
    with FakeLabelStudio() as fake, FakeLabelStudio(allowed=False) as other:
        pool = _connect(api, fake)
        _settled_version(api, pool)
        # As when the operator has removed an origin from the list since the setup.
        redis.hset(PoolKeys(pool).labelstudio, "hostname", other.url)
        job = _next_push(api, pool)
        assert job["result"]["outcome"] == "the Label Studio origin is not in SIEVE_LABELSTUDIO_ORIGINS"
        assert other.requests == []


def test_a_redirect_from_the_allowed_origin_is_not_followed(api, redis):
    with FakeLabelStudio() as fake, FakeLabelStudio(allowed=False) as other:
        fake.redirect_to = other.url
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "tok-a"}).ok
        job = _sync_job(api, redis, pool_of(api))
        assert job["status"] == "failed" and "302" in job["error"]
        assert fake.calls("GET", TASKS) and other.requests == []


def test_a_setup_moving_to_another_origin_without_a_token_never_sends_it_the_old_token(api, redis):
    with FakeLabelStudio() as first, FakeLabelStudio() as second:
        pool = _connect(api, first, token="token-of-first")
        _model_version_set(first, _settled_version(api, pool))
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": second.url, "access_token": None}).ok
        assert redis.hget(PoolKeys(pool).labelstudio, "token") is None
        job = _next_push(api, pool)
        assert job["result"]["outcome"] == "no Label Studio address or token"
        assert second.requests == []
        # With its own token, the new origin is called, with that token only.
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": second.url, "access_token": "token-of-second"}).ok
        _wait_for(lambda: second.calls("GET", TASKS))
        assert {r["authorization"] for r in second.requests} == {"Token token-of-second"}


def test_a_label_studio_answering_the_same_full_page_forever_is_read_once(api, redis):
    with FakeLabelStudio() as fake:
        fake.endless = "same"
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "tok-a"}).ok
        pool = pool_of(api)
        job = _sync_job(api, redis, pool)
        assert job["result"]["outcome"] == "stopped" and job["result"]["added"] == 500, job
        assert "page 2" in job["result"]["reason"]
        assert len(fake.calls("GET", TASKS)) == 2


def test_a_label_studio_answering_full_pages_forever_is_read_as_far_as_its_total(api, redis):
    with FakeLabelStudio() as fake:
        fake.endless = "fresh"  # every page full of new tasks, the answer saying there are 1000
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "tok-a"}).ok
        job = _sync_job(api, redis, pool_of(api))
        assert job["result"]["outcome"] == "synced" and job["result"]["added"] == 1000, job
        assert len(fake.calls("GET", TASKS)) == 2


LONG = "a" * 2_000_000


def test_a_task_text_or_id_longer_than_the_limits_is_not_read_on_any_path(api, redis):
    with FakeLabelStudio() as fake:
        fake.tasks = [{"id": 1, "data": {"text": LONG}}, {"id": 2, "data": {"text": "short"}}]
        assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "tok-a"}).ok
        pool = pool_of(api)
        assert _sync_job(api, redis, pool)["result"]["added"] == 1  # the sync
        project = event("START_TRAINING")["project"]
        created = webhook(
            api,
            {
                "action": "TASKS_CREATED",
                "project": project,
                "tasks": [
                    {"id": 3, "data": {"text": LONG}},
                    {"id": 4, "data": {"text": "ok"}},
                    {"id": 10**300, "data": {"text": "an id past MAX_ID_LENGTH"}},
                ],
            },
        )
        assert created["added"] == 1  # a webhook
        predict = ls(
            api,
            "POST",
            "/predict",
            {
                "project": SETUP["project"],
                "label_config": SETUP["schema"],
                "tasks": [{"id": 5, "data": {"text": LONG}}, {"id": 6, "data": {"text": "fine"}}],
            },
        )
        assert predict.status_code == 200, predict.text
        assert predict.json()["results"][0]["score"] == 1.0  # unreadable: last in Label Studio's queue
        assert api.status(pool)["n_items"] == 3  # tasks 2, 4 and 6


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_webhook_nested_deeper_than_python_can_parse_is_acknowledged(api):
    answer = api.request("POST", "/labelstudio/webhook", data=DEEP, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["status"] == "ignored", answer.text


@pytest.mark.parametrize("path", ["/setup", "/predict"])
def test_setup_and_predict_nested_deeper_than_python_can_parse_are_a_400(api, path):
    answer = api.request("POST", f"/labelstudio{path}", data=DEEP, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["field"] == "body"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Python parses these in the request, so what reads them afterwards must not recurse.
@pytest.mark.parametrize("depth", [300, 900])
@pytest.mark.parametrize(
    "template",
    [
        '{"action": %s}',
        '{"action": "TASKS_CREATED", "project": %s}',
        '{"action": "TASKS_CREATED", "project": 1, "tasks": [{"id": 1, "data": {"text": %s}}]}',
        '{"action": "ANNOTATION_CREATED", "project": 1, "annotation": {"id": 1, "task": 1, "result": %s}}',
    ],
    ids=["action", "project", "task-text", "annotation-result"],
)
def test_a_webhook_nested_as_deep_as_python_parses_is_acknowledged(connected, template, depth):
    body = template % _nested(depth)
    answer = connected.request("POST", "/labelstudio/webhook", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("depth", [300, 900])
@pytest.mark.parametrize(
    "path, template",
    [
        ("/setup", '{"project": "1.1795785340", "schema": "<View/>", "extra_params": %s}'),
        ("/setup", '{"project": %s, "schema": "<View/>"}'),
        ("/predict", '{"project": "1.1795785340", "tasks": [{"id": 1, "data": {"text": "x", "more": %s}}]}'),
        ("/predict", '{"project": "1.1795785340", "tasks": [], "params": %s}'),
        ("/predict", '{"project": "1.1795785340", "tasks": %s}'),
    ],
    ids=["setup-extra-params", "setup-project", "predict-task-data", "predict-params", "predict-tasks"],
)
def test_setup_and_predict_nested_as_deep_as_python_parses_answer_without_a_500(connected, path, template, depth):
    body = template % _nested(depth)
    answer = connected.request("POST", f"/labelstudio{path}", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["Content-Type"] == "application/problem+json"
