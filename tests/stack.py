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


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    """Calls check() until it returns something truthy, and returns that; raises after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


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
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "sieve.cli", "worker"],
                    env=env,
                    stdout=open(log_dir / f"worker{i}.log", "w"),
                    stderr=subprocess.STDOUT,
                )
            )
        redis = Redis.from_url(env["REDIS_URL"])
        wait_until(lambda: Worker.count(connection=redis) >= workers, 30, "workers to register")
        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sieve.cli",
                    "api",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--processes",
                    "1",
                ],
                env=env,
                stdout=open(log_dir / "api.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
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
