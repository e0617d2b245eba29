"""One tenant's backlog of refreshes does not hold up another tenant's: jobs wait in per-tenant lanes that
the workers serve in turn."""

from __future__ import annotations

import os

import numpy as np
import pytest
from redis import Redis

from sieve.embedded import EmbeddedRedis
from sieve.job_queue import lane_of
from tests.conftest import SECRET
from tests.helpers import ApiClient
from tests.stack import running_service, sieve_cli, wait_until

HEAVY, LIGHT = "heavy", "light"
HEAVY_POOLS = 6
HEAVY_MODEL = {"type": "random_forest", "params": {"n_estimators": 50, "max_features": 16, "criterion": "log_loss"}}
"""50 trees weighing all 16 features at each split on 1500 noisy labels (the most work the model bounds allow
here), and its cross-validated review: seconds per refresh."""


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    """A Sieve of its own with two workers (keys turn auth on for its whole Redis): a client per tenant."""
    assert lane_of(HEAVY, "") != lane_of(LIGHT, ""), "the two tenants must not share a lane"
    server = EmbeddedRedis(tmp_path_factory.mktemp("fairness-redis")).start()
    env = {**os.environ, "REDIS_URL": server.url, "SIEVE_SECRET_KEY": SECRET, "SIEVE_JOB_RETRIES": "1"}
    try:
        with running_service(env, tmp_path_factory.mktemp("fairness-logs"), workers=2) as url:
            clients = {}
            for tenant in (HEAVY, LIGHT):
                made = sieve_cli(env, "keys", "create", "--tenant", tenant)
                clients[tenant] = ApiClient(url)
                clients[tenant].session.headers["Authorization"] = f"Bearer {made.stdout.strip().rsplit(' ', 1)[-1]}"
            yield {**clients, "redis": Redis.from_url(server.url)}
    finally:
        server.stop()


def _heavy_pool(api: ApiClient, seed: int) -> str:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 16)).round(4)
    y = np.where(X[:, 0] + X[:, 1] + rng.normal(scale=1.5, size=len(X)) > 0, "pos", "neg")
    return api.create_pool(
        model=HEAVY_MODEL,
        random_state=0,
        items=[{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X)],
        labels=[{"id": f"i{i}", "label": str(y[i])} for i in range(1500)],
    )


def _up_to_date(api: ApiClient, pool_id: str) -> bool:
    status = api.status(pool_id)
    return status["ranked_version"] == status["version"] and status["model_version"] == status["labels_version"]


def test_a_tenants_refresh_overtakes_another_tenants_backlog(tenants):
    heavy, light = tenants[HEAVY], tenants[LIGHT]
    backlog = [_heavy_pool(heavy, seed) for seed in range(HEAVY_POOLS)]
    rng = np.random.default_rng(99)
    X = rng.normal(size=(200, 2)).round(4)
    small = light.create_pool(
        items=[{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X)],
        labels=[{"id": f"i{i}", "label": "a" if X[i, 0] > 0 else "b"} for i in range(20)],
    )

    wait_until(lambda: _up_to_date(light, small), 120, "the light tenant's pool to be up to date")
    behind = [pool for pool in backlog if not _up_to_date(heavy, pool)]
    # In one shared FIFO the small refresh would start only once the whole backlog had started: at most
    # the one refresh running on the other worker would still be behind.
    assert len(behind) >= HEAVY_POOLS // 2, f"only {len(behind)} of {HEAVY_POOLS} heavy pools were still behind"
    for pool in backlog:
        wait_until(lambda: _up_to_date(heavy, pool), 180, "the heavy backlog to drain")


def test_a_refresh_waiting_for_its_busy_pool_gives_its_worker_to_another_tenant(tenants):
    from rq.job import Job
    from rq.serializers import JSONSerializer

    heavy, light = tenants[HEAVY], tenants[LIGHT]
    redis = tenants["redis"]
    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, 16)).round(4)
    y = np.where(X[:, 0] + X[:, 1] + rng.normal(scale=1.5, size=len(X)) > 0, "pos", "neg")
    busy = heavy.create_pool(
        model=HEAVY_MODEL, random_state=0, items=[{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X)]
    )
    heavy.wait_idle(busy)
    first = heavy.teach(busy, [(f"i{i}", str(y[i])) for i in range(1500)])
    wait_until(lambda: heavy.status(busy)["retrain"]["running"], 30, "the slow refresh to start", interval=0.02)
    # A second change while it runs: its refresh is taken by the other worker and waits for the first.
    second = heavy.teach(busy, [("i1500", str(y[1500]))])
    waiting = Job.fetch(second["job_id"], connection=redis, serializer=JSONSerializer)
    wait_until(
        lambda: waiting.get_status(refresh=True).value == "started", 30, "the other worker to take it", interval=0.02
    )

    small = light.create_pool(
        items=[{"id": f"i{i}", "features": row.tolist()} for i, row in enumerate(X[:200])],
        labels=[{"id": f"i{i}", "label": "a" if X[i, 0] > 0 else "b"} for i in range(20)],
    )
    wait_until(lambda: _up_to_date(light, small), 120, "the light tenant's pool to be up to date")
    assert (heavy.status(busy)["model_version"] or 0) < first["labels_version"], (
        "the light tenant's refresh waited for the heavy tenant's slow refresh to end"
    )
    final = wait_until(lambda: _up_to_date(heavy, busy) and heavy.status(busy), 180, "the heavy pool to catch up")
    assert final["model_version"] == second["labels_version"]
