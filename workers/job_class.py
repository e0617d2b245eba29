"""The only jobs a worker runs: Sieve's own functions, named in the job that Redis holds.

Anyone who can write to Redis can put a job on the queue, and RQ would import and call whatever dotted
name the job carries (and its success, failure and stopped callbacks, and send its webhooks). The worker
builds every job it takes with this class instead, which resolves only the names below and refuses
everything else before importing anything, so that a forged job fails and is logged, and runs nothing.
"""

from __future__ import annotations

import logging

from rq.job import Job
from rq.utils import import_attribute

from sieve.job_queue import PUSH_FUNCTION, REFRESH_FUNCTION, SHARD_FUNCTION, SYNC_FUNCTION, TRAIN_FUNCTION

JOB_FUNCTIONS = frozenset({REFRESH_FUNCTION, PUSH_FUNCTION, SYNC_FUNCTION, TRAIN_FUNCTION, SHARD_FUNCTION})
"""Every function a worker may call: Sieve enqueues only these."""

log = logging.getLogger("sieve.worker")


class ForbiddenJob(Exception):
    """A job names something other than Sieve's job functions: it was not enqueued by Sieve."""


class SieveJob(Job):
    @property
    def func(self):
        name = self.func_name
        if name not in JOB_FUNCTIONS or self.instance is not None:
            self._refuse(
                f"it names {name!r}{' on an instance' if self.instance is not None else ''}, "
                "which is not one of Sieve's job functions"
            )
        extras = [
            kind
            for kind, value in (
                ("success callback", self._success_callback_name),
                ("failure callback", self._failure_callback_name),
                ("stopped callback", self._stopped_callback_name),
                ("webhooks", self.webhooks),
            )
            if value
        ]
        if extras:
            self._refuse(f"it carries {', '.join(extras)}, which Sieve never sets")
        return import_attribute(name)

    def _refuse(self, why: str):
        self.retries_left = 0  # a forged job stays forged: fail it once, never requeue it
        log.error("refused job %s from queue %s: %s", self.id, self.origin, why)
        raise ForbiddenJob(f"refused: {why}")

    # Sieve sets no callbacks and no webhooks: whatever names a job carries are never imported or called.
    @property
    def success_callback(self):
        return None

    @property
    def failure_callback(self):
        return None

    @property
    def stopped_callback(self):
        return None

    def send_webhooks(self, *args, **kwargs) -> None:
        return None
