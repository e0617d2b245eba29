"""Starts real `sieve worker` and `sieve api` processes for tests, and stops them whatever happens."""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from redis import Redis
from rq import Worker

from sieve.embedded import free_port


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.ConnectionError:
        return False


@contextmanager
def running_service(env: dict, log_dir: Path, workers: int = 2):
    """Yields the URL of a gunicorn API, with `workers` RQ workers on the Redis of env's REDIS_URL."""
    processes = []
    try:
        for i in range(workers):
            processes.append(subprocess.Popen([sys.executable, "-m", "sieve.cli", "worker"], env=env,
                                              stdout=open(log_dir / f"worker{i}.log", "w"),
                                              stderr=subprocess.STDOUT))
        redis = Redis.from_url(env["REDIS_URL"])
        wait_until(lambda: Worker.count(connection=redis) >= workers, 30, "workers to register")
        port = free_port()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "sieve.cli", "api", "--host", "127.0.0.1", "--port", str(port),
             "--processes", "1", "--threads", "8"], env=env, stdout=open(log_dir / "api.log", "w"),
            stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), 30, "the API to answer")
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
