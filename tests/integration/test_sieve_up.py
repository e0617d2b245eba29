"""`sieve up` as a new user runs it: embedded Redis, workers and the API, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Worker

from sieve.embedded import free_port
from tests.helpers import ApiClient
from tests.stack import wait_until


def test_sieve_up_serves_the_loop_on_embedded_redis_and_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SIEVE_SECRET_KEY")}
    env["SIEVE_DATA_DIR"] = str(tmp_path / "data")
    up = subprocess.Popen(
        [sys.executable, "-m", "sieve.cli", "up", "--port", str(port), "--workers", "1", "--api-processes", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
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
        pool = api.create_pool(
            items=[{"id": str(i), "features": [float(i)]} for i in range(10)],
            labels=[{"id": "0", "label": "low"}, {"id": "9", "label": "high"}],
        )
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


def _up_env(data_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SIEVE_SECRET_KEY")}
    env["SIEVE_DATA_DIR"] = str(data_dir)
    return env


def _start_up(tmp, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sieve.cli", "up", "--port", str(port), "--workers", "1", "--api-processes", "1"],
        env=_up_env(tmp / "data"),
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 30) -> str:
    """The output of a `sieve up` that should exit by itself; one that does not is stopped first."""
    try:
        output, _ = process.communicate(timeout=timeout)
        return output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"`sieve up` did not exit by itself:\n{output}")


class Up:
    def __init__(self, tmp):
        self.tmp = tmp
        self.data = tmp / "data"
        self.port = free_port()
        self.process = _start_up(tmp, self.port)
        self.api = ApiClient(f"http://127.0.0.1:{self.port}")

    def redis(self) -> Redis:
        return Redis.from_url((self.data / "redis.url").read_text())

    def wait_ready(self):
        def ready():
            assert self.process.poll() is None, "sieve up exited"
            try:
                answer = self.api.get("/readyz", timeout=2)
                return answer.ok and answer.json()["workers"] >= 1
            except requests.ConnectionError:
                return False

        wait_until(ready, 60, "sieve up to serve", interval=0.2)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """One running `sieve up` on an embedded Redis, shared by the tests below."""
    running = Up(tmp_path_factory.mktemp("up"))
    try:
        running.wait_ready()
        yield running
    finally:
        os.killpg(running.process.pid, signal.SIGINT)
        running.process.communicate(timeout=60)


def test_a_second_sieve_up_on_the_same_data_folder_refuses_at_once_and_leaves_redis_url_alone(up):
    noted = up.data / "redis.url"
    before = (noted.read_bytes(), noted.stat().st_mtime_ns)
    second = _start_up(up.tmp, free_port())
    output = _finish(second)
    assert second.returncode == 1, output
    assert output.strip().splitlines() == [output.strip()] and "is in use by `sieve up` (pid" in output, output
    assert (noted.read_bytes(), noted.stat().st_mtime_ns) == before
    assert up.process.poll() is None and up.api.get("/readyz").ok
    keys = subprocess.run(
        [sys.executable, "-m", "sieve.cli", "keys", "list"],
        env=_up_env(up.data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keys.returncode == 0, keys.stderr


def test_the_embedded_redis_of_sieve_up_refuses_a_client_without_its_password(up):
    redis = up.redis()
    port = redis.connection_pool.connection_kwargs["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n")
        assert raw.recv(100).startswith(b"-NOAUTH")
    password = (up.data / "redis.password").read_text().strip()
    assert len(password) >= 32 and f":{password}@127.0.0.1:{port}/" in (up.data / "redis.url").read_text()
    assert redis.config_get("bind") == {"bind": "127.0.0.1"}
    # A process's command line is readable by every local user: the password is not on it.
    pid = redis.info("server")["process_id"]
    assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_the_data_folder_and_everything_redis_writes_in_it_are_readable_by_their_owner_only(up):
    up.redis().set("test:mode", "1")  # something in the AOF
    assert stat.S_IMODE((up.data).stat().st_mode) == 0o700
    assert stat.S_IMODE((up.data / "redis").stat().st_mode) == 0o700
    files = [up.data / name for name in ("redis.url", "redis.password", "secret.key", "sieve.lock")]
    files += list((up.data / "redis").glob("appendonly*")) + [up.data / "redis" / "redis.log"]
    assert len(files) >= 6
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files} == {
        path.name: oct(0o600) for path in files
    }


def test_sieve_keys_says_clearly_when_it_cannot_reach_redis(up):
    port = up.redis().connection_pool.connection_kwargs["port"]
    for url in (f"redis://127.0.0.1:{free_port()}/0", f"redis://:wrong-password@127.0.0.1:{port}/0"):
        keys = subprocess.run(
            [sys.executable, "-m", "sieve.cli", "keys", "list"],
            env={**_up_env(up.data), "REDIS_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert keys.returncode == 1, keys.stderr
        assert keys.stderr.startswith("Error: cannot use the Redis named by REDIS_URL: "), keys.stderr
        assert "Traceback" not in keys.stderr and "wrong-password" not in keys.stderr


def test_sieve_up_restarts_its_embedded_redis_after_kill_9_and_the_data_is_still_there(up):
    pool = up.api.create_pool(
        items=[{"id": str(i), "features": [float(i)]} for i in range(10)],
        labels=[{"id": "0", "label": "low"}, {"id": "9", "label": "high"}],
    )
    assert up.api.query(pool, k=3, wait=30)["model_version"] == 1
    killed = up.redis().info("server")["process_id"]
    os.kill(killed, signal.SIGKILL)

    def served():
        try:
            answer = up.api.get(f"/v1/pools/{pool}", timeout=2)
        except requests.ConnectionError:
            return None
        return answer.json() if answer.ok else None

    status = wait_until(served, 15, "the API to answer again after Redis was killed", interval=0.2)
    assert status["n_items"] == 10 and status["n_labeled"] == 2
    assert up.redis().info("server")["process_id"] != killed
    up.api.teach(pool, [("5", "high")])
    assert up.api.query(pool, k=3, wait=30)["model_version"] == 2


def test_sieve_up_exits_with_a_clear_message_when_its_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = _start_up(tmp_path, port)
        output = _finish(up, timeout=60)
    assert up.returncode == 1, output
    assert f"Error: port {port} on 127.0.0.1 is in use" in output, output
    assert "Sieve on" not in output
