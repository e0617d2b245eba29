"""Runs one RQ worker on the refresh queue, through Redis outages, with a sweeper for lost refreshes."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from rq import SimpleWorker, get_current_job
from rq.serializers import JSONSerializer
from rq.worker import DequeueStrategy

from sieve import logs
from sieve.job_queue import worker_queues
from sieve.settings import Settings
from sieve.storage.connection import connect
from sieve.workers import context
from sieve.workers.job_class import SieveJob
from sieve.workers.sweeper import Sweeper

log = logging.getLogger("sieve.worker")


def run_worker(settings: Settings, burst: bool = False) -> bool:
    settings.require_secret_key()  # fail at start, not at the first job
    context.start(settings)
    from sieve.workers import refresh_job  # noqa: F401  (loads numpy and scikit-learn now, not during the first retrain)

    logs.configure("worker", context=_job_context)
    redis = connect(settings, blocking=True)
    sweeper = None if burst else Sweeper(redis, settings).start()
    try:
        while True:
            # SimpleWorker runs jobs in this process, so the feature cache survives between jobs; SieveJob
            # runs only Sieve's job functions, whatever else a job in Redis names.
            worker = SimpleWorker(
                worker_queues(redis, settings), connection=redis, serializer=JSONSerializer, job_class=SieveJob
            )
            try:
                # In turn from each lane: one tenant's backlog waits behind other tenants' next jobs.
                return worker.work(burst=burst, logging_level="INFO", dequeue_strategy=DequeueStrategy.ROUND_ROBIN)
            except RedisError as error:
                # RQ gives up when Redis vanishes in the middle of a job; wait for it and serve again.
                log.warning("Redis failed under the worker (%s); waiting for it to come back", error)
            _wait_for(redis)
    finally:
        if sweeper:
            sweeper.stop()


def _job_context() -> dict:
    job = get_current_job()
    return {"job_id": job.id} if job is not None else {}


def _wait_for(redis) -> None:
    while True:
        try:
            redis.ping()
            return
        except RedisError:
            time.sleep(1)
