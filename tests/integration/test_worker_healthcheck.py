"""`python -m sieve.workers.healthcheck`, the compose file's worker healthcheck, against a real Redis."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from rq import SimpleWorker
from rq.utils import utcformat

from sieve.workers.healthcheck import healthy

STALE_BIRTH = "2000-01-01T00:00:00.000000Z"


def test_a_worker_is_healthy_while_its_registration_names_this_live_process(redis):
    worker = SimpleWorker(["healthcheck-test"], connection=redis)
    worker.hostname = f"healthcheck-{uuid.uuid4().hex}"  # apart from any other worker of the suite
    assert not healthy(redis, worker.hostname)
    worker.register_birth()
    try:
        assert healthy(redis, worker.hostname)
        # A restarted container's new PID 1 under the registration its killed predecessor left behind.
        redis.hset(worker.key, "birth", STALE_BIRTH)
        assert not healthy(redis, worker.hostname)
        # A fresh registration whose process is gone (above the kernel's largest pid: no such process).
        redis.hset(worker.key, mapping={"birth": utcformat(datetime.now(timezone.utc)), "pid": 2**22 + 1})
        assert not healthy(redis, worker.hostname)
    finally:
        worker.register_death()
    assert not healthy(redis, worker.hostname)
