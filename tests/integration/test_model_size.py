"""A refresh whose model would be bigger than SIEVE_MAX_MODEL_MB publishes nothing and says why."""

from __future__ import annotations

import numpy as np
import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from sieve.job_queue import worker_queues
from sieve.settings import Settings
from sieve.storage.keys import PoolKeys
from tests.helpers import ApiClient
from tests.stack import running_service, wait_until

QUEUE = "sieve-small-models"


@pytest.fixture(scope="module")
def small_models(service_env, tmp_path_factory):
    """A worker and an API allowing 1 MB models, on a queue of their own (the shared workers allow 32 MB)."""
    env = {**service_env, "SIEVE_MAX_MODEL_MB": "1", "SIEVE_QUEUE": QUEUE}
    with running_service(env, tmp_path_factory.mktemp("small-model-logs"), workers=1) as url:
        yield ApiClient(url)


def test_a_model_over_the_size_limit_fails_its_refresh_and_publishes_nothing(small_models, redis):
    api = small_models
    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 8)).round(4)
    y = np.where(X[:, 0] + rng.normal(scale=1.5, size=len(X)) > 0, "pos", "neg")  # noisy: deep trees
    pool = api.create_pool(
        model={"type": "random_forest", "params": {"n_estimators": 100}},
        items=[{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X)],
        labels=[{"id": f"i{i}", "label": str(y[i])} for i in range(500)],
    )

    def ended():
        status = api.status(pool)
        return status if status["retrain"]["last_error"] or status["ranked_version"] else None

    status = wait_until(ended, 120, "the refresh to end")
    error = status["retrain"]["last_error"] or ""
    assert "ModelTooLarge" in error and "SIEVE_MAX_MODEL_MB" in error and "1 MB" in error, error
    assert status["model_version"] is None and status["ranked_version"] is None
    assert not redis.exists(PoolKeys(pool).model)
    assert api.post(f"/v1/pools/{pool}/predict", json={"ids": ["i0"]}).status_code == 409
    failed = wait_until(
        lambda: [
            job_id
            for queue in worker_queues(redis, Settings(queue_name=QUEUE))
            for job_id in queue.failed_job_registry.get_job_ids()
        ],
        10,
        "the job to be failed",
    )
    job = Job.fetch(failed[0], connection=redis, serializer=JSONSerializer)
    assert len(job.results()) == 1, "a refresh whose model is too large is not retried"
