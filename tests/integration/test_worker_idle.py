"""An idle worker waits for jobs without timing out, so the next job starts at once.

redis-py 8 gives every connection a 5 s read timeout; RQ raises it above its 405 s blocking pop only for
connections made after the worker is built. The worker's Redis client had already been used (by the
sweeper and the queues), so each idle wait failed after 5 s with "Timeout reading from socket" and RQ
backed off, up to a minute, before it looked at its queues again: a job could wait that long.
"""

from __future__ import annotations

import time

import numpy as np

from tests.helpers import items_of
from tests.stack import Stack


def test_an_idle_worker_waits_without_timing_out_and_takes_the_next_job_at_once(tmp_path):
    with Stack(tmp_path, workers=1).start() as stack:
        time.sleep(7)  # longer than redis-py's default read timeout
        log = (tmp_path / "worker0.log").read_text()
        assert "Timeout reading from socket" not in log and "could not connect to Redis" not in log, log[-2000:]

        rng = np.random.default_rng(0)
        features = np.vstack([rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))])
        client = stack.client()
        labels = {f"i{i}": "a" for i in range(3)} | {f"i{i}": "b" for i in range(20, 23)}
        created = client.create_pool(items_of(features), labels=labels)
        started = time.monotonic()
        client.wait_for_model(created["pool_id"], created["labels_version"], timeout=60)
        assert time.monotonic() - started < 10
