"""Fault tests: each test starts its own Redis, workers and API (tests/stack.py), and kills them for real.

Nothing here is shared between tests: a test gets a `Stack` whose processes live in tmp_path and are all
stopped by the fixture's finalizer, whatever happened in the test.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from redis import Redis

from sieve.client import Client
from sieve.storage.keys import PoolKeys
from tests.stack import Stack, hermetic_env, wait_until  # noqa: F401 (the fault tests take wait_until from here)

SECRET = "fault-test-secret-0123456789abcdef"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def make_stack(tmp_path):
    """make_stack(job_retries=1, job_timeout=None) -> Stack; every stack made is closed at teardown."""
    stacks: list[Stack] = []

    def make(job_retries: int = 1, job_timeout: int | None = None) -> Stack:
        env = hermetic_env(SIEVE_SECRET_KEY=SECRET, SIEVE_JOB_RETRIES=str(job_retries))
        if job_timeout is not None:
            env["SIEVE_JOB_TIMEOUT"] = str(job_timeout)
        stack = Stack(tmp_path / f"stack{len(stacks)}", env=env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


# -- reading a pool straight from Redis ------------------------------------------------------------


def label_log(redis: Redis, pool_id: str) -> list[dict]:
    """Every entry of the pool's label log, decoded: labels_version, source, ids, labels."""
    entries = []
    for _, fields in redis.xrange(PoolKeys(pool_id).log):
        entries.append(
            {
                "labels_version": int(fields[b"labels_version"]),
                "source": fields[b"source"].decode(),
                "ids": json.loads(fields[b"ids"]),
                "labels": json.loads(fields[b"labels"]),
            }
        )
    return entries


def labels_by_id(redis: Redis, pool_id: str) -> dict[str, object]:
    """The pool's `labels` hash, keyed by item id (it is keyed by row in Redis), labels decoded."""
    rows = {int(row): item_id.decode() for row, item_id in redis.hgetall(PoolKeys(pool_id).ids).items()}
    stored = redis.hgetall(PoolKeys(pool_id).labels)
    return {rows[int(row)]: json.loads(label) for row, label in stored.items()}


def labeled_bits(redis: Redis, pool_id: str) -> set[str]:
    """Ids whose bit is set in the pool's `labeled` bitmap."""
    rows = {int(row): item_id.decode() for row, item_id in redis.hgetall(PoolKeys(pool_id).ids).items()}
    bitmap = redis.get(PoolKeys(pool_id).labeled) or b""
    return {rows[byte * 8 + bit] for byte, value in enumerate(bitmap) for bit in range(8) if value & (0x80 >> bit)}


def pool_meta(redis: Redis, pool_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis.hgetall(PoolKeys(pool_id).meta).items()}


# -- a pool whose retrain takes seconds, and a client that watches it ------------------------------

SLOW_ITEMS, SLOW_DIM, SLOW_TAUGHT = 4000, 16, 1500
SLOW_MODEL = {"type": "random_forest", "params": {"n_estimators": 50, "max_features": 16, "criterion": "log_loss"}}
"""50 trees weighing every feature at each split on 1500 noisy labels, the most work the model bounds allow
here: with its cross-validated estimate a retrain takes seconds on a 2-core machine, long enough to kill it."""


def _client(url: str, timeout: float = 60) -> Client:
    """A client that never retries: a fault test sees each call's fate as it happened."""
    return Client(url, timeout=timeout, retries=0)


class RetrainLost(AssertionError):
    """A refresh was cut short and never redone: the pool stays behind its labels."""


def make_random_pool(url: str, n_items: int, seed: int) -> str:
    """A cold pool of n_items random 2-feature items named i0, i1, ...; its id."""
    features = np.random.default_rng(seed).normal(size=(n_items, 2)).round(4)
    return _client(url).create_pool(items=[{"id": f"i{i}", "features": row} for i, row in enumerate(features)])[
        "pool_id"
    ]


def teach_through(fault, make_teacher, n_items: int, n_clients: int, acked_each_side: int) -> list:
    """Client threads teach disjoint slices of items i0.. while `fault(phase)` strikes in the middle.

    Each teacher tags its calls with the phase in force ('before', whatever `fault` sets, then 'after');
    at least `acked_each_side` calls are acknowledged before the fault and after it. Returns the teachers.
    """
    phase = ["before"]
    teachers = [
        make_teacher([f"i{i}" for i in range(t, n_items, n_clients)], lambda: phase[0]) for t in range(n_clients)
    ]
    acked = lambda when: sum(c["status"] == 202 and c["phase"] == when for t in teachers for c in list(t.calls))
    try:
        for teacher in teachers:
            teacher.start()
        wait_until(lambda: acked("before") >= acked_each_side, 30, "calls to be acknowledged before the fault")
        fault(phase)
        phase[0] = "after"
        wait_until(lambda: acked("after") >= acked_each_side, 30, "calls to be acknowledged after the fault")
    finally:
        for teacher in teachers:
            teacher.stop.set()
        for teacher in teachers:
            teacher.join(60)
    return teachers


def make_slow_pool(url: str) -> tuple[str, list[tuple[str, str]]]:
    """Creates the slow pool over HTTP; returns its id and SLOW_TAUGHT (id, label) pairs to teach."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(SLOW_ITEMS, SLOW_DIM))
    # Noisy labels make deep trees, so that the forest takes seconds to fit.
    y = np.where(X[:, 0] + X[:, 1] + rng.normal(scale=1.5, size=SLOW_ITEMS) > 0, "pos", "neg")
    pool_id = _client(url).create_pool(
        name="slow",
        model=SLOW_MODEL,
        random_state=0,
        items=[{"id": f"i{i}", "features": row} for i, row in enumerate(X)],
    )["pool_id"]
    return pool_id, [(f"i{i}", str(y[i])) for i in range(SLOW_TAUGHT)]


def teach(url: str, pool_id: str, pairs) -> dict:
    return _client(url).teach(pool_id, pairs)


class Watch:
    """A client polling the pool's status over HTTP; remembers every model_version it was shown."""

    def __init__(self, url: str, pool_id: str):
        self.url, self.pool_id = url, pool_id
        self.client = _client(url, timeout=30)
        self.model_versions: list[int | None] = []

    def status(self) -> dict:
        status = self.client.status(self.pool_id)
        self.model_versions.append(status["model_version"])
        return status

    def ranked(self) -> dict | None:
        """The status once the rankings reflect every change (a cold-start ranking has no model)."""
        status = self.status()
        return status if status["ranked_version"] == status["version"] else None

    def up_to_date(self) -> dict | None:
        """The status once the rankings reflect every change and the model every label."""
        status = self.ranked()
        return status if status and status["model_version"] == status["labels_version"] else None

    def wait_up_to_date(self, timeout: float) -> dict | None:
        """Reads the pool as a labeling client would (status, and queries that wait) until it is up to
        date; None if it is not within timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.up_to_date()
            if status:
                return status
            # Whatever it answers (a 202 while no ranking exists, an error while the stack recovers).
            self.client.session.get(f"{self.url}/v1/pools/{self.pool_id}/query", params={"k": 5, "wait": 1}, timeout=30)
        return None

    def assert_model_version_never_went_back(self):
        seen = self.model_versions
        for before, after in zip(seen, seen[1:]):
            assert before is None or (after is not None and after >= before), (
                f"model_version went back from {before} to {after}: {seen}"
            )
