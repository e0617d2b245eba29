"""Label Studio keeps every prediction it is sent: each push deletes the predictions of the pool's earlier model
versions (Label Studio's DELETE /api/projects/{id}/model-versions/), so that a project holds about one prediction
per unlabeled task, whatever the number of retrains. Real API, Redis and workers; a recording Label Studio."""

from __future__ import annotations

from sieve.storage import job_ids
from tests.integration.test_labelstudio import PREDICT, event, webhook
from tests.integration.test_labelstudio_push import _connect, _model_version_set, _settled_version, _wait_for
from tests.labelstudio_support import FakeLabelStudio

FOREIGN = {"another-backend-v1": 6, "sieve-00000000-1": 6}
"""Versions Sieve did not make for the pool under test: another backend's, and another pool's."""


def _annotate(api, task_id: int, label: str) -> None:
    """An annotator labels a task: one change, so one retrain and one push follow."""
    body = event("ANNOTATION_CREATED")
    body["annotation"].update(id=100 + task_id, task=task_id)
    body["annotation"]["result"][0]["value"]["choices"] = [label]
    body["task"] = next(t for t in PREDICT["tasks"] if t["id"] == task_id)
    webhook(api, body)


def _pushed(api, fake, pool: str) -> str:
    """The model version of the push that follows the pool's settled retrain, once Label Studio follows it."""
    version = _settled_version(api, pool)
    _model_version_set(fake, version)
    return version


def _imported(fake) -> set[str]:
    return {r["body"][0]["model_version"] for r in fake.calls("POST", fake.IMPORT)}


def _deleted(fake) -> list[str]:
    return [r["body"]["model_version"] for r in fake.calls("DELETE", fake.VERSIONS)]


def _number(version: str) -> int:
    return int(version.rsplit("-", 1)[1])


def _job(api, pool: str, version: str) -> dict:
    """The push job of this model version, once it ended."""
    job = job_ids.push(pool, _number(version))
    return _wait_for(
        lambda: (lambda j: j if j.get("status") in ("finished", "failed") else None)(api.get(f"/v1/jobs/{job}").json()),
        f"push job {job} to end",
    )


def test_each_push_deletes_the_pools_superseded_versions_never_the_current_or_a_foreign_one(api):
    with FakeLabelStudio() as fake:
        fake.versions.update(FOREIGN)
        pool = _connect(api, fake)
        pushed = [_pushed(api, fake, pool)]
        for task_id, label in ((1, "Positive"), (2, "Negative"), (5, "Positive")):
            _annotate(api, task_id, label)
            pushed.append(_pushed(api, fake, pool))
        current = pushed[-1]
        assert len(set(pushed)) == 4
        superseded = _imported(fake) - {current}
        _wait_for(lambda: set(_deleted(fake)) >= superseded, "the superseded versions to be deleted")
        assert set(_deleted(fake)) == superseded
        deletions = fake.calls("DELETE", fake.VERSIONS)
        assert {r["path"] for r in deletions} == {"/api/projects/1/model-versions/"}
        assert all(set(r["body"]) == {"model_version"} for r in deletions)
        # A version is deleted only once a newer one is the project's.
        for deletion in deletions:
            before = fake.requests[: fake.requests.index(deletion)]
            assert any(
                _number(r["body"]["model_version"]) > _number(deletion["body"]["model_version"])
                for r in before
                if r["method"] == "PATCH"
            )
        assert fake.versions == {**FOREIGN, current: fake.versions[current]}
        assert set(_job(api, pool, current)["result"]["pruned"]) <= superseded


def test_a_label_studio_that_refuses_the_deletion_still_gets_the_push_and_the_next_push_deletes_again(api):
    with FakeLabelStudio() as fake:
        fake.fail_deletes = True
        pool = _connect(api, fake)
        first = _pushed(api, fake, pool)
        _annotate(api, 1, "Positive")
        second = _pushed(api, fake, pool)
        job = _job(api, pool, second)
        assert job["status"] == "finished" and job["result"]["outcome"] == "pushed", job
        assert job["result"]["model_version"] == second and fake.model_version == second
        assert _deleted(fake) and all(_number(v) < _number(second) for v in _deleted(fake))  # asked, refused
        assert job["result"]["pruned"] == []
        assert {first, second} <= set(fake.versions)

        fake.fail_deletes = False
        _annotate(api, 2, "Negative")
        third = _pushed(api, fake, pool)
        _wait_for(lambda: set(fake.versions) == {third}, "the versions left from before to be deleted")
        assert third not in _deleted(fake)


def test_a_push_that_a_newer_ranking_overtook_sets_no_version_and_deletes_nothing(api, redis):
    """Two pushes on two workers: the newer one has set its version and deleted the older one's; the older
    push, finishing last, must not point the project back at predictions that are gone."""
    from sieve.labelstudio.client import LabelStudioClient
    from sieve.storage.link_store import LinkStore
    from sieve.workers.labelstudio_jobs import _follow

    with FakeLabelStudio() as fake:
        pool = _connect(api, fake)
        current = _pushed(api, fake, pool)
        _job(api, pool, current)  # its prune, after the version is set, calls Label Studio too
        older = _number(current) - 1
        calls = len(fake.requests)
        answer = _follow(
            redis,
            LabelStudioClient(fake.url, "legacy-token-123"),
            LinkStore(redis).load(pool),
            pool,
            older,
            f"sieve-{pool[:8]}-{older}",
            created=2,
        )
        assert answer["outcome"] == "superseded" and answer["ranked_version"] == _number(current)
        assert fake.requests[calls:] == []
