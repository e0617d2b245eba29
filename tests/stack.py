"""The one way the tests and the benchmarks start Sieve: an embedded Redis, `sieve worker`s and `sieve api`.

A `Stack` keeps every process it starts in a folder of its own (their logs: worker0.log, worker1.log...,
api.log, api1.log...) and stops them all on close(), whatever happened. Each child runs in its own process
group (session): a test can kill a gunicorn master together with its workers, Ctrl-C in a terminal reaches
only the calling script, and close() also reaps what a killed parent leaves behind (an RQ worker's forked
scheduler survives a SIGKILL of the worker).

    with Stack(tmp_path, workers=2) as stack:
        client = stack.client()

Fault tests drive the pieces one by one instead: start_redis(), start_worker(), start_api(), kill_redis(),
kill_api(). Without `env`, the processes run hermetically: no SIEVE_* setting or REDIS_URL of the calling
shell reaches them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from redis import Redis
from redis.exceptions import RedisError

from sieve.client import Client
from sieve.embedded import EmbeddedRedis, free_port

SECRET = "test-secret-key-0123456789abcdef"


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
    except requests.RequestException:
        return False


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    """Signals the process group a child leads (its own session); quiet if the group is already gone."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def sieve_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """Runs a `sieve` command in env, as an operator would; fails the test if it fails."""
    return subprocess.run(
        [sys.executable, "-m", "sieve.cli", *args], env=env, capture_output=True, text=True, check=True
    )


def hermetic_env(**settings: str) -> dict:
    """This process's environment without SIEVE_* or REDIS_URL, plus a secret key and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_") and k != "REDIS_URL"}
    env.update(SIEVE_SECRET_KEY=SECRET, PYTHONUNBUFFERED="1")
    env.update(settings)
    return env


class Stack:
    """Redis, workers and API processes, all started here and all stopped by close()."""

    def __init__(
        self, root: Path, env: dict | None = None, workers: int = 1, api_processes: int = 1, stop_grace: float = 2.0
    ):
        """`env`: the processes' whole environment (a REDIS_URL in it is used as is, and no Redis is started);
        by default hermetic_env(). `workers` and `api_processes`: what start() starts."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.env = dict(env) if env is not None else hermetic_env()
        self.n_workers = workers
        self.api_processes = api_processes
        self.stop_grace = stop_grace
        self.redis_dir = self.root / "redis"
        self.redis_port = free_port()
        self.redis_servers: list[EmbeddedRedis] = []
        self.workers: list[subprocess.Popen] = []
        self.apis: list[subprocess.Popen] = []
        self.api_port = free_port()
        self._clients: list[Redis] = []

    # -- the whole stack ------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Stack:
        """Redis (unless env names one), the workers, then the API; returns once all of them answer."""
        try:
            if "REDIS_URL" not in self.env:
                self.start_redis()
            self.start_sieve(timeout)
        except BaseException:
            self.print_logs()
            self.close()
            raise
        return self

    def start_sieve(self, timeout: float = 60) -> None:
        """The workers and the API (again, on the same port and Redis after stop_sieve())."""
        self.start_workers(self.n_workers, timeout)
        self.start_api(timeout)

    def stop_sieve(self) -> None:
        """Stops the API and the workers, keeping Redis and its data: Sieve is down."""
        self._stop(self.apis + self.workers)
        self.apis, self.workers = [], []

    def close(self) -> None:
        """Stops every process and Redis server this stack started; idempotent."""
        for client in self._clients:
            try:
                client.close()
            except Exception:
                pass
        self._clients = []
        self.stop_sieve()
        for server in self.redis_servers:
            server.stop()
        self.redis_servers = []

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            self.print_logs()
        self.close()

    @property
    def children(self) -> list[tuple[str, subprocess.Popen]]:
        """(name, process) of every running child: worker0, worker1..., api, api1..."""
        return [(f"worker{i}", p) for i, p in enumerate(self.workers)] + [
            (f"api{i or ''}", p) for i, p in enumerate(self.apis)
        ]

    # -- Redis ----------------------------------------------------------------------------------

    def start_redis(self, appendfsync: str = "everysec") -> EmbeddedRedis:
        """Starts (or restarts, on the same port and data dir) the embedded Redis."""
        server = EmbeddedRedis(self.redis_dir, port=self.redis_port, appendfsync=appendfsync).start()
        self.redis_servers.append(server)
        self.env["REDIS_URL"] = server.url
        return server

    @property
    def redis_server(self) -> EmbeddedRedis:
        return self.redis_servers[-1]

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    def redis(self) -> Redis:
        """A client of the stack's Redis, closed with the stack."""
        client = Redis.from_url(self.redis_url)
        self._clients.append(client)
        return client

    def kill_redis(self) -> None:
        """SIGKILL: Redis gets no chance to flush or close anything."""
        process = self.redis_server.process
        process.kill()
        process.wait(10)

    # -- workers --------------------------------------------------------------------------------

    def start_worker(self, timeout: float = 60) -> subprocess.Popen:
        """A `sieve worker` process; returns once RQ's worker registry lists its pid."""
        (process,) = self.start_workers(1, timeout)
        return process

    def start_workers(self, n: int, timeout: float = 60) -> list[subprocess.Popen]:
        """n `sieve worker` processes, started together; returns once RQ's registry lists every one."""
        from rq import Worker

        started = [self._spawn(f"worker{len(self.workers) + i}", ["worker"]) for i in range(n)]
        self.workers += started
        if not started:
            return started
        client = self.redis()

        def registered():
            for process in started:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited with {process.returncode}; see the logs in {self.root}")
            try:
                pids = {w.pid for w in Worker.all(connection=client)}
            except RedisError:
                return False
            return all(process.pid in pids for process in started)

        wait_until(registered, timeout, "the workers to register with RQ", interval=0.1)
        return started

    # -- API ------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    base_url = api_url

    def client(self, **options) -> Client:
        """A sieve.client.Client of this stack's API."""
        return Client(self.api_url, **options)

    def start_api(self, timeout: float = 60, processes: int | None = None) -> subprocess.Popen:
        """gunicorn (`api_processes` gevent processes) on this stack's port; returns once /healthz answers."""
        name = f"api{len(self.apis) or ''}"
        process = self._spawn(
            name,
            [
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--processes",
                str(processes or self.api_processes),
            ],
        )
        self.apis.append(process)

        def up():
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}; see {self.root}/{name}.log")
            return _answers(self.api_url)

        wait_until(up, timeout, "the API to answer", interval=0.1)
        return process

    def kill_api(self, process: subprocess.Popen) -> None:
        """kill -9 the gunicorn master and every worker it forked (they share its process group)."""
        _signal_group(process, signal.SIGKILL)
        process.wait(10)

    # -- processes ------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "a")  # a restarted process adds to its log
        process = subprocess.Popen(
            [sys.executable, "-m", "sieve.cli", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return process

    def _stop(self, children: list[subprocess.Popen]) -> None:
        for process in children:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        # A short grace: workers leave RQ cleanly in about a second; gunicorn would wait out keep-alive
        # connections for several, and nothing here holds anything worth waiting for.
        deadline = time.monotonic() + self.stop_grace
        for process in children:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in children:
            # Whatever is left in the group (a straggler, an orphaned RQ scheduler) goes for good.
            _signal_group(process, signal.SIGKILL)
            if process.poll() is None:
                process.wait(10)

    def print_logs(self, lines: int = 30) -> None:
        """The last lines of every log, on stderr: what a failed start or run left behind."""
        for log in sorted(self.root.glob("*.log")) + sorted(self.redis_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                print(f"--- last lines of {log.name} ---", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)


@contextmanager
def running_service(env: dict, log_dir: Path, workers: int = 2):
    """Yields the URL of a gunicorn API, with `workers` RQ workers on the Redis of env's REDIS_URL."""
    with Stack(log_dir, env=env, workers=workers) as stack:
        yield stack.api_url
