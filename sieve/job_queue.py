"""Enqueues refresh jobs: JSON-serialized, deterministic ids, bounded time, retried on failure.

Jobs wait in lanes, one RQ queue each, and a tenant's jobs all go to the lane its name hashes to; workers
take from the lanes in turn (RQ's round-robin dequeue), so a tenant with a long backlog delays another
tenant by at most the jobs already running, not by its backlog.
"""

from __future__ import annotations

import zlib

from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from sieve.settings import Settings
from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from sieve.storage.replies import text

REFRESH_FUNCTION = "sieve.workers.refresh_job.refresh_pool"
RETRY_INTERVALS = [0]
"""Retries go straight back on the queue: a delay would need RQ's scheduler, a process forked from a
worker that outlives it when the worker is killed and keeps its Redis connections, so that the killed
worker's blocked dequeue goes on taking jobs that nobody runs."""

LANES = 16
"""Queues the jobs are spread over by tenant. Two tenants share a lane with odds 1/LANES; a worker's
blocking dequeue watches them all, which costs Redis nothing while they are empty."""


def lane_of(tenant: str | None, pool_id: str) -> int:
    """The lane of the pool's tenant; of the pool itself when it has none (API keys off)."""
    owner = f"tenant:{tenant}" if tenant else f"pool:{pool_id}"
    return zlib.crc32(owner.encode()) % LANES


class RefreshQueues:
    """The lanes `<SIEVE_QUEUE>:lane:<n>`, and the plain `<SIEVE_QUEUE>` queue that older API processes
    enqueue on, which the workers serve too."""

    def __init__(self, redis: Redis, settings: Settings):
        self.connection = redis
        self.name = settings.queue_name
        self.lanes = [Queue(f"{self.name}:lane:{n}", connection=redis, serializer=JSONSerializer) for n in range(LANES)]
        self.shared = Queue(self.name, connection=redis, serializer=JSONSerializer)

    def for_pool(self, pool_id: str) -> Queue:
        tenant = self.connection.hget(PoolKeys(pool_id).meta, "tenant")
        return self.lanes[lane_of(text(tenant) if tenant else None, pool_id)]

    def all(self) -> list[Queue]:
        return [*self.lanes, self.shared]

    @property
    def count(self) -> int:
        """Jobs waiting in every lane."""
        pipe = self.connection.pipeline(transaction=False)
        for queue in self.all():
            pipe.llen(queue.key)
        return sum(pipe.execute())


def refresh_queue(redis: Redis, settings: Settings) -> RefreshQueues:
    return RefreshQueues(redis, settings)


def worker_queues(redis: Redis, settings: Settings) -> list[Queue]:
    """The queues a worker takes jobs from, in turn."""
    return refresh_queue(redis, settings).all()


PUSH_FUNCTION = "sieve.workers.labelstudio_jobs.push_predictions"
SYNC_FUNCTION = "sieve.workers.labelstudio_jobs.sync_project"
TRAIN_FUNCTION = "sieve.workers.labelstudio_jobs.train_project"
SHARD_FUNCTION = "sieve.workers.shard_job.score_shard"


def _enqueue(
    queues: RefreshQueues, function: str, args: tuple, job_id: str, settings: Settings, description: str
) -> str:
    """Enqueues `function(*args)` on the lane of the pool `args[0]`, under job_id, JSON-serialized, with
    bounded time and retries; enqueuing an id that is already queued runs it once."""
    options = dict(
        job_id=job_id,
        job_timeout=settings.job_timeout,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=settings.job_retries, interval=RETRY_INTERVALS) if settings.job_retries else None,
        description=description,
    )
    try:
        queues.for_pool(args[0]).enqueue(function, *args, unique=True, **options)
    except DuplicateJobError:
        pass
    return job_id


def enqueue_refresh(queues: RefreshQueues, pool_id: str, job_id: str, settings: Settings) -> str:
    """Enqueues the pool's refresh under job_id; enqueuing the same id twice runs it once."""
    return _enqueue(queues, REFRESH_FUNCTION, (pool_id,), job_id, settings, f"refresh pool {pool_id}")


def enqueue_shard(queues: RefreshQueues, pool_id: str, run: str, index: int, settings: Settings) -> str:
    """Enqueues shard `index` of a sharded refresh's run, for any worker to score."""
    description = f"score shard {index} of pool {pool_id}"
    job_id = job_ids.shard(pool_id, run, index)
    return _enqueue(queues, SHARD_FUNCTION, (pool_id, run, index), job_id, settings, description)


def enqueue_push(queues: RefreshQueues, pool_id: str, ranked_version: int, settings: Settings) -> str:
    """Enqueues the push of this ranking to Label Studio, once per ranking."""
    job_id = job_ids.push(pool_id, ranked_version)
    description = f"push pool {pool_id} to Label Studio"
    return _enqueue(queues, PUSH_FUNCTION, (pool_id, ranked_version), job_id, settings, description)


def enqueue_sync(queues: RefreshQueues, pool_id: str, settings: Settings, why: str = job_ids.SYNC_ASKED) -> str:
    """Enqueues making the pool's labels equal its Label Studio project's; a fresh id each time, since
    the project may have changed whatever the pool's version says. `why`: job_ids.SYNC_*, a letter in the id."""
    description = f"sync pool {pool_id} with Label Studio"
    return _enqueue(queues, SYNC_FUNCTION, (pool_id,), job_ids.sync(pool_id, why), settings, description)


def enqueue_train(queues: RefreshQueues, pool_id: str, settings: Settings) -> str:
    """Enqueues Label Studio's Start Training: a sync, then the retrain it needs or the push again."""
    description = f"train pool {pool_id} for Label Studio"
    return _enqueue(queues, TRAIN_FUNCTION, (pool_id,), job_ids.train(pool_id), settings, description)


def waiting_jobs(queues: RefreshQueues) -> set[str]:
    """The ids of every job waiting in a queue (lanes and the shared one), read in one round trip."""
    pipe = queues.connection.pipeline(transaction=False)
    for queue in queues.all():
        pipe.lrange(queue.key, 0, -1)
    return {text(job_id) for ids in pipe.execute() for job_id in ids}


def give_up(redis: Redis, job_id: str, reason: str) -> None:
    """Marks a job that no worker will run as failed, so that a client polling it learns so."""
    try:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return
    if job.get_status() in (JobStatus.FINISHED, JobStatus.FAILED):
        return
    queue = Queue(job.origin, connection=redis, serializer=JSONSerializer)
    with redis.pipeline() as pipe:
        job.set_status(JobStatus.FAILED, pipeline=pipe)
        queue.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string=reason, pipeline=pipe)
        pipe.lrem(queue.intermediate_queue_key, 1, job_id)  # where RQ's single-queue dequeue leaves it
        pipe.execute()


def fetch_job(redis: Redis, job_id: str) -> Job | None:
    """A job as RQ keeps it (finished ones for an hour); None once it is gone."""
    try:
        return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    except (NoSuchJobError, ValueError):
        return None


def workers_alive(redis: Redis) -> int:
    """How many workers have registered and not yet timed out."""
    return Worker.count(connection=redis)
