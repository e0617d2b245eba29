"""Shared fixtures: a real Redis server on a free port, real worker processes, a real HTTP server."""

from __future__ import annotations

import os

import pytest
from redis import Redis

from sieve.embedded import EmbeddedRedis
from sieve.settings import Settings
from sieve.storage.keys import EVERY_KEY
from tests.helpers import ApiClient
from tests.labelstudio_support import allowed_origins
from tests.stack import SECRET, running_service


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """The embedded Redis on a free port; SIEVE_TEST_REDIS_URL points the suite at another server."""
    external = os.environ.get("SIEVE_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis(redis_url):
    client = Redis.from_url(redis_url)
    yield client
    # Pools are isolated by their random ids; clearing them keeps the server small between tests.
    keys = list(client.scan_iter(EVERY_KEY, count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def settings(redis_url) -> Settings:
    return Settings(redis_url=redis_url, secret_key=SECRET.encode(), job_retries=1, first_ranking_wait=20.0)


@pytest.fixture(scope="session")
def service_env(redis_url) -> dict:
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        SIEVE_SECRET_KEY=SECRET,
        SIEVE_JOB_RETRIES="1",
        PYTHONUNBUFFERED="1",
        # The recording servers of tests/labelstudio_support.py, and the hostname of the captured setup.
        SIEVE_LABELSTUDIO_ORIGINS=",".join(allowed_origins() + ["http://localhost:8080"]),
    )
    return env


@pytest.fixture(scope="session")
def service_logs(tmp_path_factory):
    """The folder of the live service's logs: api.log, worker0.log, worker1.log."""
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def live_url(service_env, service_logs) -> str:
    """A real gunicorn serving the API over HTTP, with two real `sieve worker` processes running."""
    with running_service(service_env, service_logs) as url:
        yield url


@pytest.fixture
def api(live_url, redis):
    """A client of the live service; `redis` deletes the pools after each test."""
    return ApiClient(live_url)
