"""Jobs that Sieve did not enqueue: whoever can write to Redis can queue a job naming any importable
function; the workers must run none but Sieve's own job functions."""

from __future__ import annotations

from redis import Redis
from rq.callbacks import Callback
from rq.job import Job
from rq.serializers import JSONSerializer

from sieve.job_queue import REFRESH_FUNCTION, worker_queues
from tests.stack import wait_until


def _ended(redis: Redis, job_id: str) -> Job | None:
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    return job if job.is_failed or job.is_finished else None


def test_a_forged_job_naming_os_mkdir_fails_without_running(api, redis_url, settings, tmp_path):
    attacker = Redis.from_url(redis_url)  # a plain client, as anyone with access to Redis has
    queue = worker_queues(attacker, settings)[0]
    target = tmp_path / "made-by-a-forged-job"
    job = queue.enqueue("os.mkdir", str(target), job_id="forged-mkdir")

    ended = wait_until(lambda: _ended(attacker, job.id), 30, "a worker to take the forged job")
    assert not target.exists()
    assert ended.is_failed
    error = ended.latest_result().exc_string
    assert "refused" in error and "os.mkdir" in error
    # The worker that refused it goes on serving Sieve's own jobs.
    pool = api.create_pool(
        items=[{"id": f"i{i}", "features": [i, -i]} for i in range(20)],
        labels=[{"id": "i0", "label": "a"}, {"id": "i19", "label": "b"}],
    )
    assert api.wait_idle(pool)["model_version"] == 1


def test_a_sieve_function_carrying_forged_callbacks_is_refused_before_it_runs(live_url, redis_url, settings):
    attacker = Redis.from_url(redis_url)
    queue = worker_queues(attacker, settings)[0]
    job = queue.enqueue(
        REFRESH_FUNCTION,
        "no-such-pool",
        job_id="forged-callback",
        on_failure=Callback("os.mkdir"),
        on_success=Callback("os.mkdir"),
    )

    ended = wait_until(lambda: _ended(attacker, job.id), 30, "a worker to take the job")
    assert ended.is_failed
    error = ended.latest_result().exc_string
    assert "refused" in error and "callback" in error
