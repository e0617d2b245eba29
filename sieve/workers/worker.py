"""Runs one RQ worker process on the refresh queue."""
from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from ..settings import Settings
from ..storage.connection import connect
from .queue import refresh_queue


def run_worker(settings: Settings, burst: bool = False) -> bool:
    settings.require_secret_key()  # fail at start, not at the first job
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    redis = connect(settings)
    # SimpleWorker runs jobs in this process, so the feature cache survives from one job to the next.
    worker = SimpleWorker([refresh_queue(redis, settings)], connection=redis, serializer=JSONSerializer)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
