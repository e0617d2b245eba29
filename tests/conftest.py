"""Shared fixtures: a real Redis server on a free port, real worker processes, a real HTTP server."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from redis import Redis

from sieve.embedded import EmbeddedRedis, free_port
from sieve.settings import Settings

SECRET = "test-secret-key-0123456789abcdef"


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
    keys = list(client.scan_iter("sieve:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def settings(redis_url) -> Settings:
    return Settings(redis_url=redis_url, secret_key=SECRET.encode(), job_retries=1, first_ranking_wait=20.0)


@pytest.fixture(scope="session")
def service_env(redis_url) -> dict:
    env = dict(os.environ)
    env.update(REDIS_URL=redis_url, SIEVE_SECRET_KEY=SECRET, SIEVE_JOB_RETRIES="1", PYTHONUNBUFFERED="1")
    return env


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def workers(service_env, redis_url, tmp_path_factory):
    """Two real `sieve worker` processes."""
    log_dir = tmp_path_factory.mktemp("worker-logs")
    processes = [subprocess.Popen([sys.executable, "-m", "sieve.cli", "worker"], env=service_env,
                                  stdout=open(log_dir / f"worker{i}.log", "w"), stderr=subprocess.STDOUT)
                 for i in range(2)]
    from rq import Worker
    client = Redis.from_url(redis_url)
    _wait_until(lambda: Worker.count(connection=client) >= 2, 30, "workers to register")
    yield processes
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_url(service_env, workers, tmp_path_factory) -> str:
    """A real gunicorn serving the API over HTTP, with the workers running."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("api-logs") / "api.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "sieve.cli", "api", "--host", "127.0.0.1", "--port",
                                str(port), "--processes", "1", "--threads", "8"], env=service_env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.ConnectionError:
            return False

    _wait_until(up, 30, "the API to answer")
    yield url
    process.terminate()
    process.wait(15)


@pytest.fixture
def http(live_url, redis):
    """A requests session against the live API; `redis` cleans the pools after each test."""
    session = requests.Session()
    session.base_url = live_url
    yield session
    session.close()
