"""Enqueues refresh jobs: JSON-serialized, deterministic ids, bounded time, retried on failure."""
from __future__ import annotations

import re

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from ..settings import Settings

REFRESH_FUNCTION = "sieve.workers.jobs.refresh_pool"
RETRY_INTERVALS = [0]
"""Retries go straight back on the queue: a delay would need RQ's scheduler, a process forked from a
worker that outlives it when the worker is killed and keeps its Redis connections, so that the killed
worker's blocked dequeue goes on taking jobs that nobody runs."""


_JOB_ID = re.compile(r"^(?:refresh|lspush|lssync)-([0-9a-f]+)-[0-9]+$")


def pool_of_job(job_id: str) -> str | None:
    """The pool a job of Sieve's works on, from its id; None for an id Sieve does not make."""
    match = _JOB_ID.match(job_id)
    return match.group(1) if match else None


def refresh_queue(redis: Redis, settings: Settings) -> Queue:
    return Queue(settings.queue_name, connection=redis, serializer=JSONSerializer)


def _options(pool_id: str, job_id: str, settings: Settings) -> dict:
    return dict(job_id=job_id, job_timeout=settings.job_timeout, result_ttl=3600, failure_ttl=7 * 24 * 3600,
                retry=Retry(max=settings.job_retries, interval=RETRY_INTERVALS) if settings.job_retries else None,
                description=f"refresh pool {pool_id}")


def enqueue_refresh(queue: Queue, pool_id: str, job_id: str, settings: Settings) -> str:
    """Enqueues the pool's refresh under job_id; enqueuing the same id twice runs it once."""
    try:
        queue.enqueue(REFRESH_FUNCTION, pool_id, unique=True, **_options(pool_id, job_id, settings))
    except DuplicateJobError:
        pass
    return job_id



PUSH_FUNCTION = "sieve.workers.labelstudio.push_predictions"
SYNC_FUNCTION = "sieve.workers.labelstudio.sync_project"


def _enqueue_once(queue: Queue, function: str, args: tuple, job_id: str, settings: Settings, description: str,
                  again: bool = False) -> str:
    """Enqueues a job under a deterministic id, once; with `again`, one that failed runs again."""
    options = _options(args[0], job_id, settings)
    try:
        queue.enqueue(function, *args, unique=True, **{**options, "description": description})
    except DuplicateJobError:
        if again:
            try:
                job = Job.fetch(job_id, connection=queue.connection, serializer=JSONSerializer)
            except NoSuchJobError:
                return job_id
            if job.is_failed:
                job.requeue()
    return job_id


def enqueue_push(queue: Queue, pool_id: str, ranked_version: int, settings: Settings, again: bool = False) -> str:
    """Enqueues the push of this ranking to Label Studio: once per ranking, unless `again`."""
    return _enqueue_once(queue, PUSH_FUNCTION, (pool_id, ranked_version), f"lspush-{pool_id}-{ranked_version}",
                         settings, f"push pool {pool_id} to Label Studio", again)


def enqueue_sync(queue: Queue, pool_id: str, version: int, settings: Settings) -> str:
    """Enqueues reading a Label Studio project's tasks and annotations into its pool, once per pool version."""
    return _enqueue_once(queue, SYNC_FUNCTION, (pool_id,), f"lssync-{pool_id}-{version}", settings,
                         f"read Label Studio's tasks into pool {pool_id}")
