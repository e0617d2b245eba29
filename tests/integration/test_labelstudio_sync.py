"""Sieve's labels follow Label Studio's even when webhooks were lost: Start Training runs a job every time
(a sync, then the retrain or the push again), and a linked pool is reconciled with its project when the
workers start and periodically. Label Studio is the recording server of tests/labelstudio_support.py;
Redis, workers and the API are real processes."""

from __future__ import annotations

import copy
import json
import re
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from redis import Redis
from rq.job import Job

from sieve.embedded import EmbeddedRedis
from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from tests.helpers import ApiClient
from tests.integration.test_labelstudio import PREDICT, SETUP, event, ls, pool_of, webhook
from tests.integration.test_labelstudio_push import _imports, _model_version_set, _settled_version, _wait_for
from tests.labelstudio_support import FakeLabelStudio
from tests.stack import running_service


def _choice(label: str) -> list[dict]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def _annotated(annotation_id: int, task: int, label: str) -> dict:
    """The webhook Label Studio sends when an annotation is made."""
    body = event("ANNOTATION_CREATED")
    body["annotation"].update(id=annotation_id, task=task, result=_choice(label))
    body["task"]["id"] = task
    return body


def _project(fake, annotations: dict[int, list[tuple[int, str]]]) -> None:
    """The project's six tasks as GET /api/tasks/ lists them, with these annotations (task → [(id, label)])."""
    fake.tasks = [
        {
            **copy.deepcopy(task),
            "annotations": [{"id": a, "result": _choice(label)} for a, label in annotations.get(task["id"], [])],
        }
        for task in PREDICT["tasks"]
    ]


def _link(api, fake, labels: dict[int, tuple[int, str]]) -> str:
    """Sets the project up and labels tasks through webhooks, Label Studio listing the same annotations."""
    _project(fake, {task: [entry] for task, entry in labels.items()})
    assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "legacy-token-123"}).ok
    assert ls(api, "POST", "/predict", PREDICT).ok
    for task, (annotation_id, label) in labels.items():
        assert webhook(api, _annotated(annotation_id, task, label))["status"] == "ok"
    return pool_of(api)


def _labels(redis: Redis, pool: str) -> dict[str, str]:
    """Sieve's labels of the pool's items, read from Redis: item id → label."""
    rows = {row: item for item, row in redis.hgetall(PoolKeys(pool).rows).items()}
    return {rows[row].decode(): json.loads(label) for row, label in redis.hgetall(PoolKeys(pool).labels).items()}


def _studio_labels(fake) -> dict[str, str]:
    """Label Studio's labels: each listed task's latest annotation."""
    out = {}
    for task in fake.tasks:
        labeled = [a for a in task["annotations"] if a["result"] and not a.get("was_cancelled")]
        if labeled:
            out[str(task["id"])] = max(labeled, key=lambda a: a["id"])["result"][0]["value"]["choices"][0]
    return out


def _reconciled(redis: Redis, pool: str, fake) -> dict:
    return _wait_for(
        lambda: (lambda got: got if got == _studio_labels(fake) else None)(_labels(redis, pool)),
        "Sieve's labels to equal Label Studio's",
    )


def _job(api, job_id: str) -> dict:
    return _wait_for(
        lambda: (lambda j: j if j.get("status") in ("finished", "failed") else None)(
            api.get(f"/v1/jobs/{job_id}").json()
        ),
        f"job {job_id} to end",
    )


def _setup_synced(api, redis: Redis, pool: str) -> None:
    """Waits for the syncs queued so far (the setup's) to end, so that they read no later change."""
    for key in redis.scan_iter(Job.key_for(f"{job_ids.prefix(job_ids.SYNC, pool)}*")):
        _job(api, key.decode().split(":")[-1])


# -- Start Training --------------------------------------------------------------------------------------------


def test_each_start_training_runs_a_job_that_pushes_the_predictions_again(api):
    with FakeLabelStudio() as fake:
        pool = _link(api, fake, {3: (1, "Positive"), 4: (2, "Negative")})
        version = _settled_version(api, pool)
        _model_version_set(fake, version)
        pushed = len(_imports(fake, version))
        # The project's predictions were deleted in Label Studio: Start Training brings them back, once.
        with fake.lock:
            fake.versions.pop(version, None)
        answers = []
        for _ in range(2):  # pressed, and pressed again once its job has ended
            answers.append(webhook(api, event("START_TRAINING")))
            job = _job(api, answers[-1]["job_id"])
            assert job["status"] == "finished" and job["result"]["outcome"] == "pushed", job
            assert job["result"]["model_version"] == version
        assert answers[0]["job_id"] != answers[1]["job_id"]
        # The second press finds the predictions there: importing them again would store each twice.
        assert len(_imports(fake, version)) == pushed + 1
        assert len(_model_version_set(fake, version)) >= 3


def test_start_training_brings_labels_given_while_sieve_was_down_and_retrains(api, redis):
    with FakeLabelStudio() as fake:
        pool = _link(api, fake, {3: (1, "Positive"), 4: (2, "Negative")})
        _setup_synced(api, redis, pool)
        before = api.wait_idle(pool)
        # Annotated while Sieve missed the webhooks: task 5 labeled, task 3 relabeled.
        _project(fake, {3: [(1, "Negative")], 4: [(2, "Negative")], 5: [(7, "Positive")]})
        job = _job(api, webhook(api, event("START_TRAINING"))["job_id"])
        assert job["status"] == "finished", job
        assert _labels(redis, pool) == {"3": "Negative", "4": "Negative", "5": "Positive"}
        after = api.wait_idle(pool)
        assert after["ranked_version"] > before["ranked_version"]
        _model_version_set(fake, f"sieve-{pool[:8]}-{after['ranked_version']}")


# -- After an outage -------------------------------------------------------------------------------------------


@contextmanager
def _sieve(service_env: dict, redis_url: str, log_dir, period: int):
    """An API and two workers on their own Redis, syncing linked pools every `period` seconds."""
    env = {**service_env, "REDIS_URL": redis_url, "SIEVE_LABELSTUDIO_SYNC_SECONDS": str(period)}
    with running_service(env, log_dir) as url:
        yield ApiClient(url)


def _outage_changes(fake) -> None:
    """What annotators did in Label Studio while Sieve was down, which no webhook will tell: task 2 got an
    annotation, task 3's was changed to Negative, task 4's was deleted, task 6 was deleted, and task 5 got a
    cancelled one."""
    _project(fake, {1: [(3, "Positive")], 2: [(10, "Negative")], 3: [(1, "Negative")]})
    fake.tasks[4]["annotations"] = [{"id": 11, "was_cancelled": True, "result": []}]
    del fake.tasks[5]


def test_workers_starting_after_an_outage_make_sieves_labels_label_studios(service_env, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(server.url)
    try:
        with FakeLabelStudio() as fake:
            with _sieve(service_env, server.url, _logs(tmp_path, "a"), period=3600) as api:
                pool = _link(api, fake, {1: (3, "Positive"), 3: (1, "Positive"), 4: (2, "Negative")})
                assert _reconciled(redis, pool, fake) == {"1": "Positive", "3": "Positive", "4": "Negative"}
                api.wait_idle(pool)
            _outage_changes(fake)
            with _sieve(service_env, server.url, _logs(tmp_path, "b"), period=3600) as api:
                assert _reconciled(redis, pool, fake) == {"1": "Positive", "2": "Negative", "3": "Negative"}
                assert _wait_for(lambda: redis.smembers(PoolKeys(pool).ls_deleted) == {b"6"})
                annotations = {
                    a.decode(): json.loads(v) for a, v in redis.hgetall(PoolKeys(pool).ls_annotations).items()
                }
                assert annotations == {
                    "1": {"task": "3", "label": "Negative"},
                    "3": {"task": "1", "label": "Positive"},
                    "10": {"task": "2", "label": "Negative"},
                }
                api.wait_idle(pool)
            # A second outage, with no change in Sieve in between: task 1's annotation is deleted.
            fake.tasks[0]["annotations"] = []
            with _sieve(service_env, server.url, _logs(tmp_path, "c"), period=3600) as api:
                assert _reconciled(redis, pool, fake) == {"2": "Negative", "3": "Negative"}
                # A webhook after the restart is taught as before, and keeps the others.
                assert webhook(api, _annotated(12, 5, "Positive"))["status"] == "ok"
                assert _labels(redis, pool) == {"2": "Negative", "3": "Negative", "5": "Positive"}
    finally:
        redis.close()
        server.stop()


def test_the_periodic_sync_reconciles_each_change_missed_while_sieve_runs(service_env, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis").start()
    redis = Redis.from_url(server.url)
    try:
        with FakeLabelStudio() as fake, _sieve(service_env, server.url, _logs(tmp_path, "a"), period=1) as api:
            pool = _link(api, fake, {1: (3, "Positive"), 3: (1, "Positive"), 4: (2, "Negative")})
            _reconciled(redis, pool, fake)
            _outage_changes(fake)
            assert _reconciled(redis, pool, fake) == {"1": "Positive", "2": "Negative", "3": "Negative"}
            assert _wait_for(lambda: redis.smembers(PoolKeys(pool).ls_deleted) == {b"6"})
            # Again, with no change in Sieve in between: the same pool version, a new sync.
            fake.tasks[0]["annotations"] = []
            fake.tasks[3]["annotations"] = [{"id": 13, "result": _choice("Positive")}]
            assert _reconciled(redis, pool, fake) == {"2": "Negative", "3": "Negative", "4": "Positive"}
            # Each reading asked only for the fields it reads (a sync: ids, texts and annotations; the push,
            # refused for the deleted task: ids), never the predictions that `fields=all` adds.
            queries = [parse_qs(urlsplit(p["path"]).query) for p in fake.calls("GET", re.compile(r"^/api/tasks/"))]
            assert len([q for q in queries if q.get("fields") == ["all"]]) >= 3
            assert all(
                q["include"] == (["id,data,annotations,result,was_cancelled"] if q.get("fields") == ["all"] else ["id"])
                for q in queries
            )
    finally:
        redis.close()
        server.stop()


def _logs(tmp_path, name: str):
    path = tmp_path / f"logs-{name}"
    path.mkdir()
    return path


def _setup_sync(api, redis: Redis, fake, pool: str) -> dict:
    """Calls /setup (as any read of the project's Model page does) and returns its sync job, once ended."""
    before = set(redis.scan_iter(Job.key_for(f"{job_ids.prefix(job_ids.SYNC, pool)}*")))
    assert ls(api, "POST", "/setup", {**SETUP, "hostname": fake.url, "access_token": "legacy-token-123"}).ok
    new = _wait_for(
        lambda: set(redis.scan_iter(Job.key_for(f"{job_ids.prefix(job_ids.SYNC, pool)}*"))) - before,
        "the setup's sync job",
    )
    return _job(api, new.pop().decode().split(":")[-1])


def test_a_sync_that_finds_another_of_the_pool_running_does_nothing(api, redis):
    with FakeLabelStudio() as fake:
        pool = _link(api, fake, {3: (1, "Positive"), 4: (2, "Negative")})
        _setup_synced(api, redis, pool)
        _project(fake, {3: [(1, "Positive")], 4: [(2, "Negative")], 5: [(7, "Negative")]})
        redis.set(PoolKeys(pool).ls_sync, "a running sync", px=60_000)
        assert _setup_sync(api, redis, fake, pool)["result"]["outcome"] == "skipped"
        assert _labels(redis, pool) == {"3": "Positive", "4": "Negative"}
        redis.delete(PoolKeys(pool).ls_sync)  # it ended
        assert _setup_sync(api, redis, fake, pool)["result"]["outcome"] == "synced"
        assert _labels(redis, pool) == {"3": "Positive", "4": "Negative", "5": "Negative"}
