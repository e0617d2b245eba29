"""`sieve up` as a new user runs it: embedded Redis, workers and the API, stopped cleanly by Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Worker

from sieve.embedded import free_port
from tests.helpers import ApiClient


def test_sieve_up_serves_the_loop_on_embedded_redis_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SIEVE_SECRET_KEY")}
    env["SIEVE_DATA_DIR"] = str(tmp_path / "data")
    up = subprocess.Popen([sys.executable, "-m", "sieve.cli", "up", "--port", str(port), "--workers", "1",
                           "--api-processes", "1"], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        api = ApiClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = api.get("/readyz", timeout=2)
                if ready.ok and ready.json()["workers"] >= 1:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and up.poll() is None, "sieve up did not become ready"
            time.sleep(0.2)
        pool = api.create_pool(items=[{"id": str(i), "features": [float(i)]} for i in range(10)],
                               labels=[{"id": "0", "label": "low"}, {"id": "9", "label": "high"}])
        answer = api.query(pool, k=3, wait=30)
        assert answer["cold_start"] is False and answer["model_version"] == 1 and len(answer["items"]) == 3

        # A worker that dies is started again by `sieve up`, and the loop goes on.
        redis = Redis.from_url((tmp_path / "data" / "redis.url").read_text())
        killed = Worker.all(connection=redis)[0].pid
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not [w for w in Worker.all(connection=redis) if w.pid != killed]:
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        api.teach(pool, [("5", "high")])
        assert api.query(pool, k=3, wait=30)["model_version"] == 2
    finally:
        # As Ctrl-C in a terminal does: SIGINT to every process of the foreground group at once.
        os.killpg(up.pid, signal.SIGINT)
        started = time.monotonic()
        output, _ = up.communicate(timeout=60)
    assert time.monotonic() - started < 15, output
    assert up.returncode == 0, output
    assert "Sieve stopped" in output
    assert (tmp_path / "data" / "secret.key").exists()
    aof = list((tmp_path / "data" / "redis").glob("appendonly*"))
    assert aof, "the embedded Redis kept no append-only file"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    with pytest.raises(RedisConnectionError):
        redis.ping()
