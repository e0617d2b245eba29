"""Label Studio's jobs: the push (after a refresh, Label Studio gets the new predictions and follows the new
model version), the sync (a project's tasks come into its pool, and its labels become the pool's) and
Start Training (a sync, then a retrain or the push again)."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import LockError
from rq import get_current_job

from sieve.job_queue import enqueue_push, enqueue_refresh, refresh_queue
from sieve.labelstudio import protocol
from sieve.labelstudio.backend import LabelStudio
from sieve.labelstudio.client import LabelStudioClient, LabelStudioError
from sieve.labelstudio.reconcile import Reconciler
from sieve.settings import Settings
from sieve.storage import job_ids
from sieve.storage.link_store import Link, LinkStore
from sieve.storage.rankings import read_all
from sieve.storage.refresh import RefreshStore
from sieve.use_cases import Pools
from sieve.workers.context import context

log = logging.getLogger("sieve.labelstudio")


def push_after_refresh(redis: Redis, pool_id: str, ranked_version: int, settings: Settings) -> None:
    """Called by a refresh that published: queues the push if the pool serves a Label Studio project.
    Whatever happens here, the refresh itself has succeeded."""
    try:
        if LinkStore(redis).is_linked(pool_id):
            enqueue_push(refresh_queue(redis, settings), pool_id, ranked_version, settings)
    except Exception:  # noqa: BLE001 (a push is a courtesy to Label Studio; never fail the refresh for it)
        log.exception("pool %s: could not queue the push to Label Studio", pool_id)


def push_predictions(pool_id: str, ranked_version: int) -> dict:
    """Sends the ranking's predictions of every unlabeled task, then sets the project's model version."""
    redis, settings, link, client, missing = _project(pool_id)
    if client is None:
        return {"pool_id": pool_id, "outcome": missing}
    ranking = read_all(redis, pool_id)
    if ranking.ranked_version != ranked_version:
        # A newer refresh published meanwhile; its own push sends its ranking.
        return {"pool_id": pool_id, "outcome": "superseded", "ranked_version": ranking.ranked_version}
    version = protocol.model_version(pool_id, ranked_version)
    links = LinkStore(redis)
    predictions = _predictions(ranking, link, version, links.deleted(pool_id))
    if client.model_versions(link.project_id).get(version, 0) >= len(predictions):
        # This ranking's predictions are there already (Start Training pressed again, or a retried push):
        # importing them again would store each twice.
        return _follow(redis, client, link, pool_id, ranked_version, version, created=0)
    try:
        created = client.import_predictions(link.project_id, predictions)
    except LabelStudioError as error:
        if error.status != 400:
            raise
        # Label Studio refuses a whole import that names a task it no longer has (deleted while Sieve
        # missed the webhook): learn which tasks exist, and send the predictions of those.
        existing = {
            task.get("id")
            for page in client.tasks(link.project_id, annotations=False)
            for task in page
            if isinstance(task, dict)
        }
        if client.stopped:  # a partial list would mark tasks deleted that are not
            raise LabelStudioError(f"reading project {link.project_id}'s tasks {client.stopped}") from error
        links.mark_deleted(pool_id, [str(p["task"]) for p in predictions if p["task"] not in existing])
        created = client.import_predictions(link.project_id, [p for p in predictions if p["task"] in existing])
    return _follow(redis, client, link, pool_id, ranked_version, version, created)


def _follow(
    redis: Redis, client: LabelStudioClient, link, pool_id: str, ranked_version: int, version: str, created: int
) -> dict:
    """Makes the project follow `version`, unless a newer ranking was published while the push ran (its
    push sets its own, and one set after it would point the project at predictions it then deletes)."""
    # Only the version: reading the whole ranking again would cost as much as the push's first read.
    latest = RefreshStore(redis).published_version(pool_id)
    if latest != ranked_version:
        return {"pool_id": pool_id, "outcome": "superseded", "ranked_version": latest, "predictions": created}
    client.set_model_version(link.project_id, version)
    log.info(
        "pool %s: pushed %d predictions to Label Studio project %d as %s", pool_id, created, link.project_id, version
    )
    pruned = _prune(client, link.project_id, pool_id, ranked_version)
    return {"pool_id": pool_id, "outcome": "pushed", "predictions": created, "model_version": version, "pruned": pruned}


def _prune(client: LabelStudioClient, project_id: int, pool_id: str, ranked_version: int) -> list[str]:
    """Deletes the predictions of this pool's earlier model versions, which Label Studio would otherwise
    keep (one per task per retrain) and send with every task. Only versions older than the one just set (a
    newer one may be a push under way), and never the one the project follows now, which Label Studio would
    then forget. A failure is logged and left to the next push, which lists the versions again; the push
    itself has succeeded."""
    pruned: list[str] = []
    try:
        versions = client.model_versions(project_id)
        current = client.model_version(project_id)
        for name in versions:
            number = protocol.ranked_version_of(pool_id, name)
            if number is not None and number < ranked_version and name != current:
                client.delete_model_version(project_id, name)
                pruned.append(name)
    except LabelStudioError as error:
        # A Label Studio that refuses one deletion likely refuses the next: stop at once.
        log.warning(
            "pool %s: could not delete old predictions in Label Studio project %d: %s", pool_id, project_id, error
        )
    return pruned


def sync_project(pool_id: str) -> dict:
    """Reads every task of the project, with its annotations, into the pool: tasks Sieve has not seen join
    it, and its labels become Label Studio's (see labelstudio/reconcile.py). One sync per pool at a time:
    one that finds another running does nothing (a change the running one read past waits for the next)."""
    redis, settings, link, client, missing = _project(pool_id)
    if client is None:
        return {"pool_id": pool_id, "outcome": missing}
    lock = LinkStore(redis).sync_lock(pool_id, settings.job_timeout + 60)
    if not lock.acquire(blocking=False):
        return {"pool_id": pool_id, "outcome": "skipped", "reason": "another sync of the pool is running"}
    try:
        # The period runs from this sync: a sync of another cause counts as the periodic one.
        LinkStore(redis).sync_due([pool_id], settings.labelstudio_sync_seconds, force=True)
        return _sync(redis, settings, link, client)
    finally:
        try:
            lock.release()
        except LockError:  # it expired: a newer sync may hold the lock now, and keeps it
            pass


def _sync(redis: Redis, settings: Settings, link: Link, client: LabelStudioClient) -> dict:
    pools, links = Pools(redis, settings), LinkStore(redis)
    service, reconciler = LabelStudio(pools, links), Reconciler(pools, links)
    before = links.annotations(link.pool_id)
    reading = reconciler.reading(link)
    added = 0
    for tasks in client.tasks(link.project_id):
        added += service._add_tasks(link, tasks)  # noqa: SLF001 (labels come from the whole reading)
        reading.add(tasks)
    outcome = {
        "pool_id": link.pool_id,
        "added": added,
        **reconciler.apply(reading, before, complete=client.stopped is None),
    }
    if client.stopped:
        log.warning("pool %s: reading Label Studio project %d %s", link.pool_id, link.project_id, client.stopped)
        return {**outcome, "outcome": "stopped", "reason": client.stopped}
    return {**outcome, "outcome": "synced"}


def train_project(pool_id: str) -> dict:
    """Label Studio's Start Training: the pool's labels become the project's, then a retrain follows if
    they changed (or a change's retrain was lost), else the last ranking is pushed again, since the
    project may have lost its predictions."""
    try:
        synced = sync_project(pool_id)
    except LabelStudioError as error:  # the labels stay as they are; the push may still get through
        log.warning("pool %s: the sync before training failed: %s", pool_id, error)
        synced = {"pool_id": pool_id, "outcome": "failed", "reason": str(error)}
    redis, settings = get_current_job().connection, context().settings
    job_id = job_ids.training_refresh(pool_id)
    if RefreshStore(redis).recover(pool_id, job_id, settings.pending_ttl_ms):
        enqueue_refresh(refresh_queue(redis, settings), pool_id, job_id, settings)
        return {"pool_id": pool_id, "outcome": "retraining", "refresh": job_id, "sync": synced}
    ranked = RefreshStore(redis).current_ranking(pool_id)
    if ranked is None:
        # A refresh is queued or running (the sync's changes asked for one): its push follows.
        return {"pool_id": pool_id, "outcome": "retraining", "sync": synced}
    return {**push_predictions(pool_id, ranked), "sync": synced}


def _project(pool_id: str):
    """The job's Redis, the settings, the pool's Label Studio link, a client for it, and why there is none
    (no address, no token, or an origin no longer allowed)."""
    redis = get_current_job().connection
    settings = context().settings
    link = LinkStore(redis).load(pool_id)
    return (redis, settings, link, *_client(link, settings))


def _client(link: Link | None, settings: Settings) -> tuple[LabelStudioClient | None, str]:
    if link is None:
        return None, "no Label Studio link"
    token = settings.labelstudio_token or link.token
    if settings.labelstudio_url:
        url, allowed = settings.labelstudio_url, None  # the operator's own choice
    else:
        # A stored hostname is checked again: the allow-list may have shrunk since the setup.
        url, allowed = link.hostname, settings.labelstudio_origins
        if url and url not in allowed:
            return None, "the Label Studio origin is not in SIEVE_LABELSTUDIO_ORIGINS"
    if not url or not token:
        return None, "no Label Studio address or token"
    return LabelStudioClient(url, token, allowed_origins=allowed), ""


def _predictions(ranking, link, version: str, deleted: set[str]) -> list[dict]:
    tasks = [None if i in deleted else protocol.task_of_item(i) for i in ranking.ids]
    n_classes = len(ranking.model_classes) or 2
    confidence = protocol.confidence(ranking.strategy, ranking.scores, n_classes)
    best = ranking.probabilities.argmax(axis=1) if ranking.probabilities is not None else None
    out = []
    for position, task in enumerate(tasks):
        if task is None:
            continue  # a deleted task, or an item added through Sieve's own API
        label = ranking.model_classes[int(best[position])] if best is not None else None
        entry = protocol.prediction(label, float(confidence[position]), version, link.from_name, link.to_name)
        out.append({"task": task, **entry})
    return out
