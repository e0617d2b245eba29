"""Finds refreshes that were lost (a worker killed mid-retrain) and asks for them again, and queues the
periodic syncs of the pools linked to Label Studio."""

from __future__ import annotations

import logging
import threading

from redis import Redis

from sieve.job_queue import enqueue_refresh, enqueue_sync, give_up, refresh_queue, waiting_jobs
from sieve.settings import Settings
from sieve.storage import job_ids
from sieve.storage.link_store import LinkStore
from sieve.storage.refresh import RefreshStore

SWEEP_SECONDS = 5.0
"""How often each worker looks for pools whose rankings are behind with nothing queued or running."""

LOST_GRACE_MS = 3000
"""How long a pool's pending job must stay neither queued nor running before a sweep asks again. A live
worker claims a job milliseconds after it dequeued it; one killed in between never does."""

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

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sweep(self) -> list[str]:
        """One pass over every pool; the ids of the refreshes it asked for."""
        asked = []
        # One read of every queue per sweep: whether a job waits is then a set lookup, whatever the backlog.
        waiting = waiting_jobs(self.queue)
        for pool_id in self.store.pool_ids():
            job_id = job_ids.recovered_refresh(pool_id)
            if self.store.recover(pool_id, job_id, self.settings.pending_ttl_ms):
                log.warning("pool %s: its refresh was lost; asking again as %s", pool_id, job_id)
            elif not self._lost_after_dequeue(pool_id, job_id, waiting):
                continue
            enqueue_refresh(self.queue, pool_id, job_id, self.settings)
            asked.append(job_id)
        return asked

    def sync_labelstudio(self, first: bool = False) -> list[str]:
        """Queues the sync of each linked pool whose period has passed (with `first`, of every linked pool:
        what Label Studio changed while Sieve was down sent no webhook); the ids of the jobs it queued."""
        links, queued = LinkStore(self.store.redis), []
        # The projects' index names every linked pool: no pass over every pool of the deployment.
        pool_ids = links.pools()
        for start in range(0, len(pool_ids), 1000):
            for pool_id in links.sync_due(
                pool_ids[start : start + 1000], self.settings.labelstudio_sync_seconds, force=first
            ):
                queued.append(enqueue_sync(self.queue, pool_id, self.settings, why=job_ids.SYNC_PERIODIC))
        return queued

    def _lost_after_dequeue(self, pool_id: str, job_id: str, waiting: set[str]) -> bool:
        """True when the pool's pending job was dequeued by a worker that died before it claimed the
        pool (or failed before, or never reached the queue): `job_id` then replaces it."""
        queued = self.store.queued_job(pool_id)
        if queued is None:
            return False
        if not self.store.recover_lost(
            pool_id, queued, job_id, self.settings.pending_ttl_ms, LOST_GRACE_MS, waiting=queued in waiting
        ):
            return False
        log.warning(
            "pool %s: its queued refresh %s was taken by no live worker; asking again as %s", pool_id, queued, job_id
        )
        give_up(self.store.redis, queued, f"its worker stopped before it began; {job_id} replaces it")
        return True

    def _run(self) -> None:
        first = True
        while True:
            try:
                self.sync_labelstudio(first)
                first = False
            except Exception:  # a Redis outage: the next pass tries again
                log.exception("queuing Label Studio syncs failed")
            if self._stop.wait(SWEEP_SECONDS):
                return
            try:
                self.sweep()
            except Exception:  # a Redis outage: the next pass tries again
                log.exception("sweep failed")
