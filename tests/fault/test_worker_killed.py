"""A worker SIGKILLed in the middle of a retrain: the retrain must not be lost.

RQ itself would notice the dead worker's job only at a worker's maintenance pass, job timeout + 60 s
after the job started (10 minutes and more with the defaults). Sieve does not wait for that: a running
refresh renews its pool's running mark every few seconds, so a killed worker's mark expires within
10 s, and every worker's sweeper then finds the pool behind its labels with nothing queued or running
and asks for the refresh again.
"""

from __future__ import annotations

import os
import signal
import time

import requests

from sieve.storage.keys import PoolKeys
from tests.fault.conftest import (
    RetrainLost,
    Watch,
    label_log,
    labels_by_id,
    make_random_pool,
    make_slow_pool,
    teach,
    wait_until,
)

RECOVERY_DEADLINE_S = 30.0
"""How long after the kill the pool may take to be up to date again, its retrain included (2-8 s here)."""

LOST_JOB_DEADLINE_S = 20.0
"""How long a refresh taken by a worker that died before it began may stay lost: sweeps every 5 s, two
looks 3 s apart, and a retrain of a small pool."""


def _kill_the_worker_running(stack, redis, watch: Watch) -> tuple[dict, str]:
    """Waits until the pool's retrain runs, finds its worker in RQ's registry and SIGKILLs it."""
    from rq import Worker

    running = wait_until(
        lambda: (s := watch.status())["retrain"]["running"] and s, 20, "the retrain to start", interval=0.02
    )
    job_id = running["retrain"]["running_job_id"]
    holders = [w for w in Worker.all(connection=redis) if w.get_current_job_id() == job_id]
    assert len(holders) == 1, f"RQ names {len(holders)} workers running {job_id}"
    pid = holders[0].pid
    assert pid in [p.pid for p in stack.workers], "the job runs on a worker this test did not start"
    os.kill(pid, signal.SIGKILL)
    next(p for p in stack.workers if p.pid == pid).wait(10)
    # The retrain was really cut short: nothing was published for this version.
    after = watch.status()
    assert after["ranked_version"] < after["version"], "the retrain finished before the kill; make it slower"
    return after, job_id


def _rq_state(redis, job_id: str) -> str:
    """The killed job as RQ sees it: its status, and when its StartedJobRegistry entry counts as abandoned."""
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    registry = StartedJobRegistry(job.origin, connection=redis, serializer=JSONSerializer)
    expiries = [
        score
        for key, score in redis.zrange(registry.key, 0, -1, withscores=True)
        if key.decode().startswith(job_id + ":")
    ]
    due = f"{min(expiries) - time.time():.0f} s from now" if expiries else "not in the StartedJobRegistry"
    return f"{job.get_status().value}, abandoned (then retried at a worker's maintenance pass) {due}"


def _assert_every_label_present(redis, watch: Watch, pool_id: str, taught: list[tuple[str, str]], n_calls: int):
    status = watch.status()
    assert status["n_labeled"] == len(taught)
    assert status["labels_version"] == n_calls
    assert redis.xlen(PoolKeys(pool_id).log) == n_calls
    assert labels_by_id(redis, pool_id) == dict(taught)
    assert sorted(i for e in label_log(redis, pool_id) for i in e["ids"]) == sorted(i for i, _ in taught)


def _slow_pool_on_one_worker(make_stack):
    """A stack with one worker and a pool whose retrain takes seconds, ranked once (cold start)."""
    stack = make_stack(job_retries=1)
    stack.start_redis()
    stack.start_worker()
    stack.start_api()
    redis = stack.redis()
    pool_id, taught = make_slow_pool(stack.api_url)
    watch = Watch(stack.api_url, pool_id)
    wait_until(watch.ranked, 30, "the cold-start ranking")
    return stack, redis, pool_id, taught, watch


def test_a_worker_killed_mid_retrain_does_not_lose_the_retrain(make_stack):
    stack, redis, pool_id, taught, watch = _slow_pool_on_one_worker(make_stack)

    teach(stack.api_url, pool_id, taught)
    _, killed_job = _kill_the_worker_running(stack, redis, watch)
    killed_at = time.monotonic()
    stack.start_worker()

    _assert_every_label_present(redis, watch, pool_id, taught, n_calls=1)
    # No further teach call: the labeling team sent its last batch and now reads the pool.
    final = watch.wait_up_to_date(RECOVERY_DEADLINE_S - (time.monotonic() - killed_at))
    watch.assert_model_version_never_went_back()
    if final is None:
        status = watch.status()
        raise RetrainLost(
            f"{RECOVERY_DEADLINE_S:.0f} s after the kill the pool is still behind its labels: "
            f"version {status['version']}, ranked_version {status['ranked_version']}, "
            f"labels_version {status['labels_version']}, model_version {status['model_version']}, "
            f"retrain {status['retrain']}; in RQ the killed job is {_rq_state(redis, killed_job)}"
        )
    assert final["n_labeled"] == len(taught)
    _assert_every_label_present(redis, watch, pool_id, taught, n_calls=1)


def test_the_next_teach_after_a_worker_killed_mid_retrain_brings_the_pool_up_to_date(make_stack):
    stack, redis, pool_id, taught, watch = _slow_pool_on_one_worker(make_stack)

    teach(stack.api_url, pool_id, taught[:-1])
    _, killed_job = _kill_the_worker_running(stack, redis, watch)
    stack.start_worker()
    # One more label: the teach script finds no queued refresh and asks for one, which the new worker runs.
    answer = teach(stack.api_url, pool_id, taught[-1:])
    assert answer["job_id"] and answer["job_id"] != killed_job

    final = wait_until(watch.up_to_date, 45, "the pool to be up to date again", interval=0.1)
    assert final["model_version"] == final["labels_version"] == 2
    assert not final["retrain"]["queued"] and not final["retrain"]["running"]
    assert final["retrain"]["last_duration_s"] >= 1.0, "the retrain was too quick to be killed reliably"
    watch.assert_model_version_never_went_back()
    _assert_every_label_present(redis, watch, pool_id, taught, n_calls=2)


def _dequeue_as_a_worker_would(redis, env: dict) -> str:
    """Takes the next refresh job off the workers' queues with RQ's own dequeue, then does nothing with
    it: the state a worker killed right after its dequeue, before it claimed the pool, leaves behind."""
    from rq import Queue
    from rq.serializers import JSONSerializer

    from sieve.job_queue import worker_queues
    from sieve.settings import Settings

    taken = Queue.dequeue_any(
        worker_queues(redis, Settings.from_env(env)), None, connection=redis, serializer=JSONSerializer
    )
    assert taken is not None, "no refresh job was queued"
    return taken[0].id


def test_a_refresh_whose_worker_died_right_after_dequeue_is_asked_again(make_stack):
    stack = make_stack(job_retries=1)
    stack.start_redis()
    stack.start_api()
    redis = stack.redis()
    pool_id = make_random_pool(stack.api_url, 300, seed=5)
    watch = Watch(stack.api_url, pool_id)
    lost_job = _dequeue_as_a_worker_would(redis, stack.env)
    assert watch.status()["retrain"]["queued_job_id"] == lost_job
    # Labels taught now coalesce into the lost job, which no worker will ever run.
    teach(stack.api_url, pool_id, [(f"i{i}", "a" if i % 2 else "b") for i in range(40)])

    stack.start_worker()
    recovered = watch.wait_up_to_date(LOST_JOB_DEADLINE_S)
    assert recovered is not None, (
        f"{LOST_JOB_DEADLINE_S:.0f} s after a worker started, the pool is still behind its labels: {watch.status()}"
    )
    assert recovered["model_version"] == recovered["labels_version"] == 1
    job = requests.get(f"{stack.api_url}/v1/jobs/{lost_job}", timeout=10).json()
    assert job["status"] == "failed", job

    # Later changes get a refresh of their own, not the lost job's.
    answer = teach(stack.api_url, pool_id, [("i100", "a")])
    assert answer["job_id"] and answer["job_id"] != lost_job
    final = wait_until(watch.up_to_date, 30, "the pool to be up to date again", interval=0.1)
    assert final["model_version"] == 2
    watch.assert_model_version_never_went_back()
