"""Shared by the benchmarks: start and stop a whole Sieve stack, and build synthetic pools on it.

A `Stack` is an embedded Redis in a temporary directory, `sieve worker` processes (one by default) and
one `sieve api` (gunicorn, 1 gevent process by default) on a free port. Every process it starts is
stopped when the `with` block ends, whether by return, exception, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from tqdm import tqdm

from sieve.embedded import EmbeddedRedis, free_port

UPLOAD_BATCH = 50_000
"""Most items sent by one create or add-items call."""

N_LABELS = 20
"""Labels taught before measuring: enough of every class for a real model."""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def stop_on_sigterm():
    """Turns SIGTERM into KeyboardInterrupt, so that `finally` blocks run and children are stopped."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Stack:
    """Embedded Redis + one worker + the API, all local; use as a context manager."""

    def __init__(self, api_processes: int = 1, workers: int = 1, extra_env: dict | None = None):
        self.api_processes = api_processes
        self.n_workers = workers
        self.extra_env = extra_env or {}
        self.tmp: Path | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.port: int | None = None
        self.env: dict = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- start / stop ---------------------------------------------------------------------------

    def start(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.print_logs()
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="sieve-bench-"))
        self.redis = EmbeddedRedis(self.tmp / "redis").start()
        self.env = dict(os.environ)
        self.env.update(
            REDIS_URL=self.redis.url,
            SIEVE_SECRET_KEY=secrets.token_hex(32),
            SIEVE_DATA_DIR=str(self.tmp),
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        for i in range(self.n_workers):
            self._spawn(f"worker{i}", ["worker"])
        self.port = free_port()
        self._spawn(
            "api", ["api", "--host", "127.0.0.1", "--port", str(self.port), "--processes", str(self.api_processes)]
        )
        self._wait_ready(timeout=60)

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.tmp / f"{name}.log", "a")  # a restarted process adds to its log
        # A session of its own: Ctrl-C in the terminal reaches only this script, which then stops
        # the child (and, through its process group, whatever the child forked) in order.
        process = subprocess.Popen(
            [sys.executable, "-m", "sieve.cli", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.children.append((name, process))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} while starting")
            try:
                answer = requests.get(self.base_url + "/readyz", timeout=2)
                if answer.status_code == 200 and answer.json().get("workers", 0) >= self.n_workers:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the stack did not become ready in time")
            time.sleep(0.1)

    def stop_sieve(self) -> None:
        """Stops the API and the workers, keeping Redis and its data: Sieve is down."""
        self._stop_children()

    def start_sieve(self) -> None:
        """Starts the workers and the API again, on the same port and Redis, and waits until ready."""
        for i in range(self.n_workers):
            self._spawn(f"worker{i}", ["worker"])
        self._spawn(
            "api", ["api", "--host", "127.0.0.1", "--port", str(self.port), "--processes", str(self.api_processes)]
        )
        self._wait_ready(timeout=60)

    def stop(self) -> None:
        """Stops every child (SIGTERM, then SIGKILL to its process group), then Redis; idempotent."""
        self._stop_children()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _stop_children(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, process in self.children:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                pass
            # The group may still hold a forked gunicorn worker even when its leader is gone.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.children = []

    def print_logs(self, lines: int = 30) -> None:
        if self.tmp is None:
            return
        for log in sorted(self.tmp.glob("*.log")) + sorted(self.tmp.glob("redis/*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                print(f"--- last lines of {log.name} ---", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)

    def __enter__(self) -> Stack:
        self._sigterm = stop_on_sigterm()
        self._sigterm.__enter__()
        try:
            return self.start()
        except BaseException:
            self._sigterm.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
                self.print_logs()
            self.stop()
        finally:
            self._sigterm.__exit__(None, None, None)


# -- talking to it ---------------------------------------------------------------------------------


class Client:
    """A thin HTTP client on one keep-alive session."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def call(self, method: str, path: str, expect: int, **kwargs) -> dict:
        kwargs.setdefault("timeout", 300)
        answer = self.session.request(method, self.base_url + path, **kwargs)
        if answer.status_code != expect:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def post_json(self, path: str, body: dict, expect: int) -> dict:
        # Serialized here once, so that the Content-Type is set and nothing is encoded twice.
        return self.call(
            "POST",
            path,
            expect,
            data=json.dumps(body, separators=(",", ":")),
            headers={"Content-Type": "application/json"},
        )

    def query(self, pool_id: str, k: int = 10, **params) -> dict:
        return self.call("GET", f"/v1/pools/{pool_id}/query", 200, params={"k": k, **params})

    def teach(self, pool_id: str, pairs) -> dict:
        return self.post_json(
            f"/v1/pools/{pool_id}/teach", {"labels": [{"id": i, "label": label} for i, label in pairs]}, 202
        )

    def status(self, pool_id: str) -> dict:
        return self.call("GET", f"/v1/pools/{pool_id}", 200)

    def wait_idle(self, pool_id: str, timeout: float = 600) -> dict:
        """Until the rankings reflect every change and no retrain is queued or running."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(pool_id)
            retrain = status["retrain"]
            if status["ranked_version"] == status["version"] and not retrain["queued"] and not retrain["running"]:
                return status
            if retrain.get("last_error"):
                raise RuntimeError(f"pool {pool_id}: retrain failed: {retrain['last_error']}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"pool {pool_id} did not settle: {status}")
            time.sleep(0.05)


# -- synthetic pools -------------------------------------------------------------------------------


@dataclass
class Pool:
    pool_id: str
    X: np.ndarray  # exactly the values the service holds, as float64
    y: np.ndarray
    ids: list[str]
    labeled: np.ndarray  # row indices taught before measuring

    def row_of(self, item_id: str) -> int:
        return int(item_id[1:])


def synthetic(n_items: int, n_features: int = 64, n_classes: int = 3, random_state: int = 0):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_items,
        n_features=n_features,
        n_informative=16,
        n_redundant=8,
        n_classes=n_classes,
        class_sep=0.8,
        random_state=random_state,
    )
    # Four decimals keep a 50k-item upload well under the API's 64 MiB body limit; float32 is what
    # the service stores, so the in-process comparison runs on the very same numbers.
    X = np.round(X, 4).astype(np.float32).astype(np.float64)
    return X, y


def first_labels(y: np.ndarray, n: int = N_LABELS) -> np.ndarray:
    """n row indices spread evenly over the classes (the first rows of each)."""
    classes = np.unique(y)
    per = -(-n // len(classes))
    rows = np.concatenate([np.flatnonzero(y == c)[:per] for c in classes])
    return np.sort(rows[:n])


def build_pool(
    client: Client, n_items: int, n_features: int = 64, random_state: int = 0, name: str | None = None
) -> Pool:
    """Creates the pool, uploads its items in calls of at most UPLOAD_BATCH, teaches N_LABELS, settles."""
    X, y = synthetic(n_items, n_features, random_state=random_state)
    ids = [f"i{i}" for i in range(n_items)]

    def items(lo: int, hi: int) -> list[dict]:
        return [{"id": ids[i], "features": row} for i, row in zip(range(lo, hi), X[lo:hi].tolist())]

    pool_id = None
    with tqdm(total=n_items, desc=f"upload {n_items:,} items", unit="item", unit_scale=True, leave=False) as bar:
        for lo in range(0, n_items, UPLOAD_BATCH):
            hi = min(lo + UPLOAD_BATCH, n_items)
            if pool_id is None:
                pool_id = client.post_json(
                    "/v1/pools",
                    {"name": name or f"bench-{n_items}", "random_state": random_state, "items": items(lo, hi)},
                    201,
                )["pool_id"]
            else:
                client.post_json(f"/v1/pools/{pool_id}/items", {"items": items(lo, hi)}, 202)
            bar.update(hi - lo)
    labeled = first_labels(y)
    client.teach(pool_id, [(ids[r], int(y[r])) for r in labeled])
    client.wait_idle(pool_id)
    return Pool(pool_id=pool_id, X=X, y=y, ids=ids, labeled=labeled)


def sizes_arg(text: str) -> list[int]:
    sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    if not sizes or min(sizes) < 100:
        raise ValueError("sizes must be a comma-separated list of pool sizes of at least 100")
    return sizes


def size_arg(text: str) -> int:
    """One pool size of at least 100 (underscores allowed: 100_000)."""
    size = int(text.replace("_", ""))
    if size < 100:
        raise ValueError("a pool size must be at least 100")
    return size


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def pool_arguments(parser, single_size: int | None = None) -> None:
    """The options the benchmarks share: `--sizes` (several pools), or with `single_size` set, `--items`
    (one pool of that default size); and `--features`."""
    if single_size is None:
        parser.add_argument(
            "--sizes",
            type=sizes_arg,
            default=sizes_arg("10000,100000"),
            help="comma-separated pool sizes (default 10000,100000)",
        )
    else:
        parser.add_argument(
            "--items", type=size_arg, default=single_size, help=f"items in the pool (default {single_size})"
        )
    parser.add_argument("--features", type=int, default=64, help="features per item (default 64)")


def build_pools(client: Client, sizes: list[int], n_features: int):
    """One ready pool per size, in size order, saying how long each took."""
    for size in sizes:
        started = time.perf_counter()
        pool = build_pool(client, size, n_features)
        print(
            f"pool of {size:,} x {n_features} ready in {time.perf_counter() - started:.1f} s "
            f"(upload, first ranking, {N_LABELS} labels, retrain)",
            flush=True,
        )
        yield size, pool


def report(verdicts: list[tuple[str, bool]], notes: tuple[str, ...] = ()) -> int:
    """Prints each goal as PASS or FAIL, any notes, and the verdict line; the exit status to return."""
    for text, ok in verdicts:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    for note in notes:
        print(note)
    missed = [text for text, ok in verdicts if not ok]
    print("Goals met: YES" if not missed else f"Goals met: NO ({len(missed)} of {len(verdicts)} missed)")
    return 1 if missed else 0


def run(main) -> None:
    """Runs a benchmark's main, turning Ctrl-C into exit status 130 once its stack is stopped."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process this benchmark started has been stopped", file=sys.stderr)
        sys.exit(130)
