"""Fault tests: each test starts its own Redis, workers and API, and kills them for real.

Nothing here is shared between tests: a test gets a `Stack` whose processes live in tmp_path and are all
stopped by the fixture's finalizer, whatever happened in the test. Workers and the API run in their own
process groups (sessions), so a test can kill a gunicorn master together with its workers, and teardown
also reaps what a killed parent leaves behind (an RQ worker's forked scheduler survives a SIGKILL of the
worker).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError

from sieve.embedded import EmbeddedRedis, free_port
from sieve.storage.keys import PoolKeys
from tests.stack import wait_until  # noqa: F401 (the fault tests take it from here too)

SECRET = "fault-test-secret-0123456789abcdef"
PROBLEM_JSON = "application/problem+json"


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    """Signals the process group a child leads (its own session); quiet if the group is already gone."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Stack:
    """One test's Redis, workers and API processes, all started here and all stopped by close()."""

    def __init__(self, root: Path, job_retries: int = 1, job_timeout: int | None = None):
        self.root = root
        self.redis_dir = root / "redis"
        self.redis_port = free_port()
        self.redis_servers: list[EmbeddedRedis] = []
        self.workers: list[subprocess.Popen] = []
        self.apis: list[subprocess.Popen] = []
        self.api_port = free_port()
        # Hermetic: no SIEVE_* setting or REDIS_URL of the calling shell reaches these processes.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_") and k != "REDIS_URL"}
        self.env.update(SIEVE_SECRET_KEY=SECRET, SIEVE_JOB_RETRIES=str(job_retries), PYTHONUNBUFFERED="1")
        if job_timeout is not None:
            self.env["SIEVE_JOB_TIMEOUT"] = str(job_timeout)
        self._clients: list[Redis] = []

    # -- Redis ----------------------------------------------------------------------------------

    def start_redis(self, appendfsync: str = "everysec") -> EmbeddedRedis:
        """Starts (or restarts, on the same port and data dir) the embedded Redis."""
        server = EmbeddedRedis(self.redis_dir, port=self.redis_port, appendfsync=appendfsync).start()
        self.redis_servers.append(server)
        self.env["REDIS_URL"] = server.url
        return server

    @property
    def redis_server(self) -> EmbeddedRedis:
        return self.redis_servers[-1]

    def redis(self) -> Redis:
        client = Redis.from_url(self.redis_server.url)
        self._clients.append(client)
        return client

    def kill_redis(self) -> None:
        """SIGKILL: Redis gets no chance to flush or close anything."""
        process = self.redis_server.process
        process.kill()
        process.wait(10)

    # -- workers --------------------------------------------------------------------------------

    def start_worker(self, timeout: float = 60) -> subprocess.Popen:
        """A `sieve worker` process; returns once RQ's worker registry lists its pid."""
        from rq import Worker

        n = len(self.workers)
        log = open(self.root / f"worker{n}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "sieve.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(process)
        client = self.redis()

        def registered():
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode}; see {self.root}/worker{n}.log")
            try:
                return any(w.pid == process.pid for w in Worker.all(connection=client))
            except RedisError:
                return False

        wait_until(registered, timeout, "the worker to register with RQ", interval=0.1)
        return process

    # -- API ------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self, timeout: float = 60) -> subprocess.Popen:
        """gunicorn (1 gevent process) on this stack's port; returns once /healthz answers."""
        n = len(self.apis)
        log = open(self.root / f"api{n}.log", "w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sieve.cli",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--processes",
                "1",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.apis.append(process)

        def up():
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}; see {self.root}/api{n}.log")
            try:
                return requests.get(f"{self.api_url}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        wait_until(up, timeout, "the API to answer", interval=0.1)
        return process

    def kill_api(self, process: subprocess.Popen) -> None:
        """kill -9 the gunicorn master and every worker it forked (they share its process group)."""
        _signal_group(process, signal.SIGKILL)
        process.wait(10)

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass
        children = self.apis + self.workers
        for process in children:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        # A short grace: workers leave RQ cleanly in about a second; gunicorn would wait out keep-alive
        # connections for several, and a test's API holds nothing worth waiting for.
        deadline = time.monotonic() + 2
        for process in children:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in children:
            # Whatever is left in the group (a straggler, an orphaned RQ scheduler) goes for good.
            _signal_group(process, signal.SIGKILL)
            if process.poll() is None:
                process.wait(10)
        for server in self.redis_servers:
            server.stop()


@pytest.fixture
def make_stack(tmp_path):
    """make_stack(job_retries=1, job_timeout=None) -> Stack; every stack made is closed at teardown."""
    stacks: list[Stack] = []

    def make(**options) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", **options)
        stack.root.mkdir(parents=True)
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


class RetrainLost(AssertionError):
    """A refresh was cut short and never redone: the pool stays behind its labels."""


def make_random_pool(url: str, n_items: int, seed: int) -> str:
    """A cold pool of n_items random 2-feature items named i0, i1, ...; its id."""
    features = np.random.default_rng(seed).normal(size=(n_items, 2)).round(4)
    created = requests.post(
        f"{url}/v1/pools",
        timeout=60,
        json={"items": [{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(features)]},
    )
    assert created.status_code == 201, created.text
    return created.json()["pool_id"]


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
    answer = requests.post(
        f"{url}/v1/pools",
        timeout=60,
        json={
            "name": "slow",
            "model": SLOW_MODEL,
            "random_state": 0,
            "items": [{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X)],
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["pool_id"], [(f"i{i}", str(y[i])) for i in range(SLOW_TAUGHT)]


def teach(url: str, pool_id: str, pairs) -> dict:
    answer = requests.post(
        f"{url}/v1/pools/{pool_id}/teach",
        timeout=60,
        json={"labels": [{"id": i, "label": label} for i, label in pairs]},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


class Watch:
    """A client polling the pool's status over HTTP; remembers every model_version it was shown."""

    def __init__(self, url: str, pool_id: str):
        self.url, self.pool_id = url, pool_id
        self.session = requests.Session()
        self.model_versions: list[int | None] = []

    def status(self) -> dict:
        answer = self.session.get(f"{self.url}/v1/pools/{self.pool_id}", timeout=30)
        assert answer.status_code == 200, answer.text
        status = answer.json()
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
            self.session.get(f"{self.url}/v1/pools/{self.pool_id}/query", params={"k": 5, "wait": 1}, timeout=30)
        return None

    def assert_model_version_never_went_back(self):
        seen = self.model_versions
        for before, after in zip(seen, seen[1:]):
            assert before is None or (after is not None and after >= before), (
                f"model_version went back from {before} to {after}: {seen}"
            )
