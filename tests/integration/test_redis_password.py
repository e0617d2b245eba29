"""A Redis that requires a password works through REDIS_URL, for the API and the workers alike."""

from __future__ import annotations

import os

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from sieve.embedded import EmbeddedRedis
from tests.conftest import SECRET
from tests.helpers import ApiClient
from tests.stack import running_service


def test_the_loop_runs_on_a_password_protected_redis(tmp_path):
    with EmbeddedRedis(tmp_path / "redis", password="s3cret-pw") as server:
        with pytest.raises((AuthenticationError, ResponseError)):
            Redis(port=server.port).ping()
        env = {**os.environ, "REDIS_URL": server.url, "SIEVE_SECRET_KEY": SECRET}
        with running_service(env, tmp_path, workers=1) as url:
            api = ApiClient(url)
            pool = api.create_pool(
                items=[{"id": str(i), "features": [float(i)]} for i in range(6)],
                labels=[{"id": "0", "label": "lo"}, {"id": "5", "label": "hi"}],
            )
            answer = api.query(pool, k=2, wait=20)
            assert answer["model_version"] == 1 and len(answer["items"]) == 2
            assert api.get("/readyz").json() == {"status": "ok", "redis": True, "workers": 1}
