"""Where one refresh of a large pool spends its time, step by step, in process on an embedded Redis.

    python bench/refresh_breakdown.py --rows 2000000 --dim 64

Stores a synthetic pool through `PoolStore` (not timed), claims it as a refresh job does, then times the
steps `workers/refresh_job.py` runs: the feature read (a worker whose cache is cold), the fit, one
predict_proba pass, each strategy's scores and sort, the batch strategy of the pool, the review, the signed
dump of the model and the publish script. One BLAS thread, as a worker runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from redis import Redis  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sieve.core.fitting import fit, predict_proba  # noqa: E402
from sieve.core.history import ModelRun, Past, PoolData, review  # noqa: E402
from sieve.core.registry import BASELINE, REGISTRY, stream_key  # noqa: E402
from sieve.core.selection import Candidates, ranking_scores, select  # noqa: E402
from sieve.core.strategies import margin, random_scores, ranking  # noqa: E402
from sieve.core.training import ALWAYS_RANKED, unlabeled_rows  # noqa: E402
from sieve.embedded import EmbeddedRedis  # noqa: E402
from sieve.storage.models import dump_model  # noqa: E402
from sieve.storage.pool_store import PoolConfig, PoolStore  # noqa: E402
from sieve.storage.refresh import Published, RefreshStore  # noqa: E402
from sieve.workers.feature_cache import FeatureCache  # noqa: E402

KEY = b"k" * 32
UPLOAD = 100_000

times: dict[str, float] = {}


@contextmanager
def timed(step: str):
    began = time.perf_counter()
    yield
    times[step] = times.get(step, 0.0) + time.perf_counter() - began


def make_pool(pools: PoolStore, n: int, dim: int, n_labels: int, strategy: str) -> str:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, dim)).astype(np.float32)
    ids = [f"i{k}" for k in range(n)]
    labels = {}
    pool_id = None
    for start in tqdm(range(0, n, UPLOAD), desc="storing rows", unit_scale=UPLOAD):
        stop = min(n, start + UPLOAD)
        cls = rng.integers(0, 3, stop - start)
        rows = (centres[cls] + rng.normal(scale=2.0, size=(stop - start, dim))).astype(np.float32)
        if pool_id is None:
            labels = {ids[k]: f"c{cls[k]}" for k in range(n_labels)}
            config = PoolConfig(
                name="bench", model={"type": "logistic_regression"}, strategy=strategy, random_state=7, classes=None
            )
            pool_id, _ = pools.create(config, ids[:stop], rows, list(labels), list(labels.values()))
        else:
            pools.add_items(pool_id, ids[start:stop], rows)
    return pool_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--strategy", default="auto", help="the pool's own strategy, ranked besides the cheap four")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(folder, appendfsync="no").start()
        try:
            run(Redis.from_url(server.url), args)
        finally:
            server.stop()


def run(redis: Redis, args) -> None:
    pools, store = PoolStore(redis, pending_ttl_ms=60_000), RefreshStore(redis)
    pool_id = make_pool(pools, args.rows, args.dim, args.labels, args.strategy)
    print(f"load average {os.getloadavg()}")
    total = time.perf_counter()
    with timed("claim (snapshot)"):
        _, snap = store.claim(pool_id, "bench-job", 600_000)
    with timed("feature read (cold cache)"):
        features = FeatureCache(8 << 30).rows(redis, pool_id, snap.n_items, snap.dim, snap.chunk_rows)
    with timed("fit"):
        model = fit(features, snap.labeled_rows, snap.label_texts, snap.model_spec, random_state=snap.seed)
    with timed("predict_proba"):
        proba = predict_proba(model, features)
    rows = unlabeled_rows(snap.n_items, snap.labeled_rows, snap.eval_rows)
    labels = np.asarray(snap.label_texts)

    def rng(stream):
        return np.random.default_rng([snap.seed, snap.version, stream_key(stream)])

    orders = {}
    for name in dict.fromkeys([*ALWAYS_RANKED, *snap.strategies]):
        candidates = Candidates(features, rows, snap.labeled_rows, labels, proba, model, snap.model_spec, rng(name))
        if name == BASELINE:
            with timed("score random"):
                scores = random_scores(len(rows), rng(BASELINE))
        elif REGISTRY[name].kind == "batch":
            with timed(f"select {name} (batch of {256})"):
                head = select(name, candidates, 256)
            with timed("sort (batch tail by margin)"):
                tail = rows[ranking(margin(proba[rows]))]
                order = np.concatenate([head, tail[~np.isin(tail, head)]])
            orders[name] = (order, 1.0 - np.arange(len(order)) / len(order))
            continue
        else:
            with timed(f"score {name}"):
                scores = ranking_scores(name, candidates)
        with timed("sort (stable argsort, every ranked strategy)"):
            order = ranking(scores)
            orders[name] = (rows[order], scores[order])
    with timed("review"):
        assessed = review(
            ModelRun(snap.labels_version, [str(c) for c in model.classes_], proba, 0.0, 0.0, False),
            PoolData(features, snap.labeled, orders[BASELINE][0], snap.model_spec, snap.seed),
            Past(snap.history, snap.stop_rows, snap.previous_stop, snap.policy),
        )
    with timed("dump model (signed)"):
        blob = dump_model(model, KEY, pool_id, snap.labels_version)
    published = Published(
        version=snap.version,
        labels_version=snap.labels_version,
        model_version=snap.labels_version,
        model_classes=[str(c) for c in model.classes_],
        model_blob=blob,
        proba=proba,
        n_ranked=len(rows),
        rankings=orders,
        finished_at=time.time(),
        duration_s=0.0,
        cold_start=False,
        review=assessed,
    )
    with timed("publish (encode blobs + publish.lua)"):
        outcome = store.publish(pool_id, "bench-job", published)
    total = time.perf_counter() - total
    print(f"{args.rows:,} rows x {args.dim}, strategies {', '.join(orders)}; publish: {outcome}")
    for step, seconds in times.items():
        print(f"  {step:<48} {seconds:8.3f} s  {100 * seconds / total:5.1f} %")
    print(f"  {'total':<48} {total:8.3f} s")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
