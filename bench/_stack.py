"""Shared by the benchmarks: start and stop a whole Sieve stack, and build synthetic pools on it.

The stack is the tests' launcher, `tests.stack.Stack` (the one way this checkout starts Sieve), in a
temporary directory: an embedded Redis, `sieve worker` processes (one by default) and one `sieve api`
(gunicorn, 1 gevent process by default) on a free port. Every process it starts is stopped when the
`with` block ends, whether by return, exception, Ctrl-C or SIGTERM. The benchmarks talk to it with
`sieve.client.Client`, as any Python service would.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's root, for tests.stack
from sieve.client import Client  # noqa: E402
from tests import stack as _launcher  # noqa: E402
from tests.helpers import peak_rss_growth_mb, status_kb  # noqa: E402

__all__ = ["Client", "Stack", "peak_rss_growth_mb", "status_kb"]

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


class Stack(_launcher.Stack):
    """tests.stack.Stack in a temporary directory it deletes at the end, on this shell's environment
    (plus `extra_env`), stopped on SIGTERM too; use as a context manager."""

    def __init__(self, api_processes: int = 1, workers: int = 1, extra_env: dict | None = None):
        self.tmp = Path(tempfile.mkdtemp(prefix="sieve-bench-"))
        env = dict(os.environ)
        env.pop("REDIS_URL", None)
        env.update(
            SIEVE_SECRET_KEY=secrets.token_hex(32),
            SIEVE_DATA_DIR=str(self.tmp),
            PYTHONUNBUFFERED="1",
            **(extra_env or {}),
        )
        # A bench's processes may hold work worth finishing: a longer grace than the tests'.
        super().__init__(self.tmp, env=env, workers=workers, api_processes=api_processes, stop_grace=15.0)

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        self._sigterm = stop_on_sigterm()
        self._sigterm.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            self._sigterm.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            self._sigterm.__exit__(None, None, None)


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


def feature_table(ids: list[str], X: np.ndarray, options: dict | None = None) -> pa.Table:
    """Rows as the binary bodies' columns, `id` and `features`; `options`, a create's fields, in the
    schema's metadata."""
    table = pa.table({"id": ids, "features": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])})
    return table.replace_schema_metadata({"sieve": json.dumps(options)}) if options else table


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
                pool_id = client.create_pool(items(lo, hi), name=name or f"bench-{n_items}", random_state=random_state)[
                    "pool_id"
                ]
            else:
                client.add_items(pool_id, items(lo, hi))
            bar.update(hi - lo)
    labeled = first_labels(y)
    client.teach(pool_id, [(ids[r], int(y[r])) for r in labeled])
    client.wait_idle(pool_id, timeout=600, raise_on_error=True)
    return Pool(pool_id=pool_id, X=X, y=y, ids=ids, labeled=labeled)


# -- memory ----------------------------------------------------------------------------------------


def api_processes(stack: Stack) -> list[int]:
    """The pids of the API's gunicorn workers (the processes that read request bodies)."""
    import psutil

    api = next(process for name, process in stack.children if name == "api")
    return [child.pid for child in psutil.Process(api.pid).children(recursive=True)]


def worker_processes(stack: Stack) -> list[int]:
    return [process.pid for name, process in stack.children if name.startswith("worker")]


def pool_bytes(redis, pool_id: str) -> int:
    """Bytes Redis reports for every key of one pool."""
    from sieve.storage.keys import PoolKeys

    return sum(redis.memory_usage(key, samples=0) or 0 for key in redis.scan_iter(PoolKeys(pool_id).every_key))


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
