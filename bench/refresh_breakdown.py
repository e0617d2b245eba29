"""Where one refresh of a large pool spends its time, step by step, in process on an embedded Redis.

    python bench/refresh_breakdown.py --rows 2000000 --dim 64

Stores a synthetic pool through `PoolStore` (not timed), claims it as a refresh job does, then times the
steps `workers/refresh_job.py` runs: the feature read (a worker whose cache is cold), the fit, one
predict_proba pass, each strategy's scores and sort, the batch strategy of the pool, the review, the signed
dump of the model and the publish script. One BLAS thread, as a worker runs.

Then the same refresh sharded (`SIEVE_SHARD_ROWS`, `--shard-rows`), its steps one after the other in this
process: each shard's scoring (what workers do in parallel), storing and reading the shards' scores (kept in
memory, as the refresh job keeps the shards it scores; with --stored, through Redis, as other workers'), the
merge, the strategies ranked after it, the review and the publish.
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
from sieve.core.sharding import merge, score_shard, scored_in_shards, shard_bounds  # noqa: E402
from sieve.core.strategies import random_scores, ranking  # noqa: E402
from sieve.core.training import ALWAYS_RANKED, RankRequest, rank_pool, unlabeled_rows  # noqa: E402
from sieve.embedded import EmbeddedRedis  # noqa: E402
from sieve.settings import Settings  # noqa: E402
from sieve.storage.keys import PoolKeys  # noqa: E402
from sieve.storage.models import dump_model  # noqa: E402
from sieve.storage.pool_store import PoolConfig, PoolStore  # noqa: E402
from sieve.storage.refresh import Published, RefreshStore  # noqa: E402
from sieve.storage.shards import ShardPlan, ShardStore  # noqa: E402
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
    parser.add_argument("--shard-rows", type=int, default=Settings.shard_rows)
    parser.add_argument("--stored", action="store_true", help="every shard's scores through Redis, as other workers'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(folder, appendfsync="no").start()
        try:
            redis = Redis.from_url(server.url)
            pool_id, features = run(redis, args)
            run_sharded(redis, pool_id, features, args)
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
            with timed("batch: head, then the rest by margin's order"):
                tail = orders["margin"][0]  # as rank_pool does: margin's own ranking
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
    report(total)
    return pool_id, features


def report(total: float) -> None:
    for step, seconds in times.items():
        print(f"  {step:<48} {seconds:8.3f} s  {100 * seconds / total:5.1f} %")
    print(f"  {'total':<48} {total:8.3f} s")
    print(f"load average {os.getloadavg()}")
    times.clear()


def run_sharded(redis: Redis, pool_id: str, features, args) -> None:
    """The same refresh again, sharded, with the in-memory features of the first (a warm worker)."""
    store, shards_store = RefreshStore(redis), ShardStore(redis)
    redis.hdel(PoolKeys(pool_id).meta, "ranked_version")  # so that this publish is not refused as stale
    total = time.perf_counter()
    _, snap = store.claim(pool_id, "bench-job-sharded", 600_000)
    strategies = (*ALWAYS_RANKED, *snap.strategies)
    request = RankRequest(
        features, snap.labeled_rows, snap.label_texts, snap.model_spec, snap.seed, snap.version,
        strategies=strategies, eval_rows=snap.eval_rows,
    )  # fmt: skip
    with timed("fit"):
        model = fit(features, snap.labeled_rows, snap.label_texts, snap.model_spec, random_state=snap.seed)
    with timed("dump model (signed) into the plan"):
        bounds = shard_bounds(features, args.shard_rows)
        plan = ShardPlan(
            "bench-job-sharded", snap.version, snap.labels_version, snap.n_items, snap.dim, snap.chunk_rows, False,
            bounds, scored_in_shards(strategies), np.unique(np.concatenate([snap.labeled_rows, snap.eval_rows])),
            dump_model(model, KEY, pool_id, snap.labels_version),
        )  # fmt: skip
        shards_store.open(pool_id, "bench", plan, 600_000)
    held = {}
    for index, (first, stop) in enumerate(bounds):
        with timed(f"shards: predict_proba, score, sort ({len(bounds)} shards; parallel)"):
            scores = score_shard(model, features[first:stop], first, plan.excluded, plan.strategies)
        # As the refresh job keeps the shards it scores itself; another worker's would be stored (--stored).
        with timed("shards: store their scores in Redis (parallel)"):
            if args.stored:
                shards_store.store(pool_id, "bench", index, plan, scores, 600_000)
            else:
                shards_store.mark_scored(pool_id, "bench", index, plan, 600_000)
                held[index] = scores
    with timed("merge: read every shard's scores"):
        shards = shards_store.read(pool_id, "bench", plan, held)
    with timed("merge: probabilities and sorted runs"):
        proba, ranked = merge(shards, plan.strategies)
    shards_store.close(pool_id, "bench", len(bounds))
    with timed("rank the rest (random, batch strategy...)"):
        result = rank_pool(RankRequest(**{**request.__dict__, "model": model, "proba": proba, "ranked": ranked}))
    with timed("review"):
        assessed = review(
            ModelRun(snap.labels_version, result.classes, proba, 0.0, 0.0, False),
            PoolData(features, snap.labeled, result.orders[BASELINE][0], snap.model_spec, snap.seed),
            Past(snap.history, snap.stop_rows, snap.previous_stop, snap.policy),
        )
    published = Published(
        snap.version, snap.labels_version, snap.labels_version, result.classes, plan.model_blob, proba,
        len(result.orders[BASELINE][0]), result.orders, time.time(), 0.0, False, assessed,
    )  # fmt: skip
    with timed("publish (encode blobs + publish.lua)"):
        outcome = store.publish(pool_id, "bench-job-sharded", published)
    total = time.perf_counter() - total
    print(f"sharded in {len(bounds)} shards of {bounds[0][1]:,} rows, one after the other; publish: {outcome}")
    report(total)


if __name__ == "__main__":
    main()
