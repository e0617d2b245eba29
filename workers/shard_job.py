"""A sharded refresh: the refresh job scores a large pool's rows in shards that any worker may take.

The refresh job (refresh_job.py) claims the pool and fits as always, then stores a plan with the signed
model, enqueues one shard job per range of rows, and scores shards itself too, last first, while workers
take them first first. Each shard is claimed by whoever scores it (a mark that its heartbeat renews), so a
shard is scored once unless its scorer dies: its claim then expires and the refresh job scores it. When
every shard's scores are stored, the refresh job reads them all, checks that each is this run's and
complete, merges them, ranks what needs every row at once, and publishes with the usual compare-and-set.
The refresh job holds its pool's running mark, with its heartbeat, from claim to publish, as an unsharded
refresh does: no other refresh of the pool starts meanwhile, and a shard whose refresh is no longer the
running one scores nothing.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from rq import get_current_job

from sieve.core.sharding import ShardScores, merge, scored_in_shards, shard_bounds
from sieve.core.sharding import score_shard as score_rows
from sieve.job_queue import enqueue_shard, refresh_queue
from sieve.settings import Settings
from sieve.storage import job_ids
from sieve.storage.models import load_model
from sieve.storage.refresh import Snapshot
from sieve.storage.shards import IncompleteShards, ShardPlan, ShardStore
from sieve.workers.context import context
from sieve.workers.heartbeat import Heartbeat

CLAIM_TTL_MS = 10_000
"""A shard's claim lives this long unless its scorer's heartbeat renews it: a killed scorer's shard is
taken over within this time."""

WAIT_SECONDS = 0.05
"""How often the refresh job looks for stored shards once every shard is taken."""

log = logging.getLogger("sieve.worker")


def is_sharded(features, settings: Settings) -> bool:
    return len(shard_bounds(features, settings.shard_rows)) > 1


def score_shard(pool_id: str, run: str, index: int) -> dict:
    """RQ job: scores shard `index` of a sharded refresh's run, unless it is scored, taken, or its refresh ended."""
    job = get_current_job()
    settings = context().settings
    store = ShardStore(job.connection)
    answer = {"pool_id": pool_id, "run": run, "shard": index}
    plan = store.plan(pool_id, run)
    if plan is None:
        return {**answer, "outcome": "gone"}
    if store.stored(pool_id, run, len(plan.bounds))[index]:
        return {**answer, "outcome": "done"}
    if not store.claim(pool_id, run, index, job.id, CLAIM_TTL_MS):
        return {**answer, "outcome": "taken"}
    began = time.perf_counter()
    model = load_model(plan.model_blob, settings.require_secret_key(), pool_id, plan.model_version)
    first, stop = plan.bounds[index]
    rows = context().features.row_range(
        job.connection, pool_id, first, stop, plan.n_items, plan.dim, plan.chunk_rows, plan.stored_sparse
    )
    outcome = _score_and_store(store, pool_id, run, index, plan, model, rows, job.id, settings)
    answer.update(outcome=outcome, rows=stop - first, duration_s=round(time.perf_counter() - began, 4))
    log.info("shard %s", outcome, extra=answer)
    return answer


def _holding(store: ShardStore, pool_id: str, run: str, index: int, token: str) -> Heartbeat:
    """Renews `token`'s claim of the shard while it scores it."""
    beat = lambda: store.beat(pool_id, run, index, token, CLAIM_TTL_MS)  # noqa: E731
    return Heartbeat(beat, CLAIM_TTL_MS, f"shard claim {token}")


def _score_and_store(
    store: ShardStore, pool_id: str, run: str, index: int, plan: ShardPlan, model, rows, token: str, settings: Settings
) -> str:
    with _holding(store, pool_id, run, index, token):
        scores = score_rows(model, rows, plan.bounds[index][0], plan.excluded, plan.strategies)
        return store.store(pool_id, run, index, plan, scores, settings.pending_ttl_ms)


def score_in_shards(
    redis, job_id: str, snapshot: Snapshot, settings: Settings, features, model, model_blob: bytes, strategies
) -> tuple[np.ndarray, dict]:
    """The refresh job's side: every row's probabilities and the orders of the strategies shards rank,
    scored by shard jobs and by this job, merged, and identical to an unsharded refresh's."""
    pool_id = snapshot.pool_id
    bounds = shard_bounds(features, settings.shard_rows)
    plan = ShardPlan(
        job_id=job_id,
        version=snapshot.version,
        model_version=snapshot.labels_version,
        n_items=snapshot.n_items,
        dim=snapshot.dim,
        chunk_rows=snapshot.chunk_rows,
        stored_sparse=snapshot.stored_sparse,
        bounds=bounds,
        strategies=scored_in_shards(strategies),
        excluded=np.unique(np.concatenate([snapshot.labeled_rows, snapshot.eval_rows]).astype(np.int64)),
        model_blob=model_blob,
    )
    run = job_ids.shard_run()
    store = ShardStore(redis)
    began = time.perf_counter()
    store.open(pool_id, run, plan, settings.pending_ttl_ms)
    try:
        queues = refresh_queue(redis, settings)
        for index in range(len(bounds)):
            enqueue_shard(queues, pool_id, run, index, settings)
        held = _take_part(store, pool_id, run, plan, model, features, job_id, settings)
        scored = time.perf_counter()
        shards: list[ShardScores] = store.read(pool_id, run, plan, held)
    finally:
        store.close(pool_id, run, len(bounds))
    read = time.perf_counter()
    merged = merge(shards, plan.strategies)
    times = {"scoring_s": scored - began, "read_s": read - scored, "merge_s": time.perf_counter() - read}
    extra = {"pool_id": pool_id, "run": run, "shards": len(bounds), "scored_here": len(held)}
    log.info("merged %d shards, %d scored here", len(bounds), len(held), extra={**extra, **_rounded(times)})
    return merged


def _rounded(times: dict) -> dict:
    return {name: round(seconds, 4) for name, seconds in times.items()}


def _take_part(
    store: ShardStore, pool_id, run, plan: ShardPlan, model, features, job_id, settings
) -> dict[int, ShardScores]:
    """Scores the shards no worker holds, last first, until every shard is scored; a shard whose scorer died is
    free again once its claim expires. The scores of the shards it scored, kept in memory (only a mark that
    they are scored goes to Redis)."""
    n, held = len(plan.bounds), {}
    while True:
        stored = store.stored(pool_id, run, n)
        if all(stored):
            return held
        for index in reversed(range(n)):
            if not stored[index] and store.claim(pool_id, run, index, job_id, CLAIM_TTL_MS):
                first, stop = plan.bounds[index]
                with _holding(store, pool_id, run, index, job_id):
                    scores = score_rows(model, features[first:stop], first, plan.excluded, plan.strategies)
                    outcome = store.mark_scored(pool_id, run, index, plan, settings.pending_ttl_ms)
                if outcome == "gone":
                    raise IncompleteShards(f"the plan of run {run} expired before its shards were scored")
                if outcome == "ok":  # else a shard job whose claim had expired stored this shard first
                    held[index] = scores
                break
        else:
            time.sleep(WAIT_SECONDS)
