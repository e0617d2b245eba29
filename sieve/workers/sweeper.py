"""Finds refreshes that were lost (a worker killed mid-retrain) and asks for them again."""
from __future__ import annotations

import logging
import secrets
import threading

from redis import Redis

from ..settings import Settings
from ..storage.pools import JOB_PREFIX
from ..storage.refresh import RefreshStore
from .queue import enqueue_refresh, refresh_queue

SWEEP_SECONDS = 5.0
"""How often each worker looks for pools whose rankings are behind with nothing queued or running."""

log = logging.getLogger("sieve.worker")


class Sweeper:
    """A daemon thread in each worker; several workers sweeping at once is harmless, since asking for
    a refresh is an atomic set-if-absent of the pool's pending mark."""

    def __init__(self, redis: Redis, settings: Settings):
        self.store = RefreshStore(redis)
        self.queue = refresh_queue(redis, settings)
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sieve-sweeper", daemon=True)

    def start(self) -> "Sweeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sweep(self) -> list[str]:
        """One pass over every pool; the ids of the refreshes it asked for."""
        asked = []
        for pool_id in self.store.pool_ids():
            job_id = f"{JOB_PREFIX}{pool_id}-r{secrets.token_hex(4)}"
            if self.store.recover(pool_id, job_id, self.settings.pending_ttl_ms):
                log.warning("pool %s: its refresh was lost; asking again as %s", pool_id, job_id)
                enqueue_refresh(self.queue, pool_id, job_id, self.settings)
                asked.append(job_id)
        return asked

    def _run(self) -> None:
        while not self._stop.wait(SWEEP_SECONDS):
            try:
                self.sweep()
            except Exception:  # a Redis outage: the next pass tries again
                log.exception("sweep failed")
