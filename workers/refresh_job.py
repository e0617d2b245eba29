"""RQ job functions: they take ids, never arrays or pickles, and let failures propagate to RQ."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace

from redis.exceptions import RedisError
from rq import get_current_job

from sieve.core.history import ModelRun, Past, PoolData, review
from sieve.core.training import ALWAYS_RANKED, RankRequest, fit_model, is_cold, rank_pool
from sieve.job_queue import enqueue_refresh, refresh_queue
from sieve.settings import Settings
from sieve.storage import job_ids, job_stats
from sieve.storage.models import ModelTooLarge, dump_model, load_model
from sieve.storage.refresh import Published, RefreshStore
from sieve.workers.context import context
from sieve.workers.heartbeat import Heartbeat
from sieve.workers.labelstudio_jobs import push_after_refresh
from sieve.workers.shard_job import is_sharded, score_in_shards

RUNNING_TTL_MS = 10_000
"""A refresh's running mark lives this long unless its heartbeat renews it (every third of it)."""

BUSY_POLL_SECONDS = 0.2
"""How often a refresh that found another one running for its pool looks again."""

log = logging.getLogger("sieve.worker")


def refresh_pool(pool_id: str) -> dict:
    """Retrains the pool's model on its current labels and rewrites every strategy's ranking.

    One refresh per pool runs at a time: a job that finds another one running waits for it, so two
    workers never fit the same pool at once; a killed worker's mark expires within RUNNING_TTL_MS.
    """
    job = get_current_job()
    began = time.perf_counter()
    try:
        answer = _run(job, pool_id)
    except Exception:
        log.exception("refresh failed", extra={"pool_id": pool_id})
        with contextlib.suppress(RedisError):  # Redis may be what failed; the job's own error matters more
            job_stats.record(job.connection, "failed", time.perf_counter() - began)
        raise
    job_stats.record(job.connection, answer["outcome"], time.perf_counter() - began)
    log.info("refresh %s", answer["outcome"], extra=answer)
    return answer


def _run(job, pool_id: str) -> dict:
    settings = context().settings
    store = RefreshStore(job.connection)
    status, snapshot = store.claim(pool_id, job.id, RUNNING_TTL_MS)
    while status == "busy":
        time.sleep(BUSY_POLL_SECONDS)
        deferred = _defer_if_others_wait(job, store, pool_id, settings)
        if deferred:
            return {"pool_id": pool_id, "outcome": "deferred", "job_id": deferred}
        status, snapshot = store.claim(pool_id, job.id, RUNNING_TTL_MS)
    if snapshot is None:
        return {"pool_id": pool_id, "outcome": status}
    if snapshot.ranked_version == snapshot.version:
        # A duplicate or re-run job: the rankings already reflect this version, so nothing changes.
        store.release(pool_id, job.id)
        return {"pool_id": pool_id, "outcome": "up to date", "version": snapshot.version}
    started = time.perf_counter()
    try:
        beat = lambda: store.beat(pool_id, job.id, RUNNING_TTL_MS)  # noqa: E731
        with Heartbeat(beat, RUNNING_TTL_MS, f"heartbeat {job.id}"):
            published = _refresh(job.connection, job.id, store, snapshot, settings, started)
            outcome = store.publish(pool_id, job.id, published)
    except Exception as error:
        store.record_failure(pool_id, job.id, f"{type(error).__name__}: {error}")
        if isinstance(error, ModelTooLarge):
            job.retries_left = 0  # the same labels fit the same model: a retry would fail the same way
        raise
    if outcome == "ok":
        push_after_refresh(job.connection, pool_id, snapshot.version, settings)
    return {
        "pool_id": pool_id,
        "outcome": outcome,
        "version": snapshot.version,
        "labels_version": snapshot.labels_version,
        "model_version": published.model_version,
        "duration_s": round(time.perf_counter() - started, 4),
    }


def _defer_if_others_wait(job, store: RefreshStore, pool_id: str, settings: Settings) -> str | None:
    """While its pool is busy, a refresh that other jobs wait behind gives its worker to them: a new job
    at the back of its lane takes over its pending mark. The id of that job, or None."""
    queues = refresh_queue(job.connection, settings)
    if not queues.count:
        return None
    new_job_id = job_ids.deferred_refresh(pool_id)
    if not store.defer(pool_id, job.id, new_job_id, settings.pending_ttl_ms):
        return None
    enqueue_refresh(queues, pool_id, new_job_id, settings)
    return new_job_id


def _refresh(redis, job_id: str, store: RefreshStore, snapshot, settings: Settings, started: float) -> Published:
    key = settings.require_secret_key()
    pool_id = snapshot.pool_id
    features = context().features.rows(
        redis, pool_id, snapshot.n_items, snapshot.dim, snapshot.chunk_rows, snapshot.stored_sparse
    )
    model = None
    if snapshot.model_version == snapshot.labels_version:
        # Only items changed since the last fit: reuse the model, score the new rows too.
        blob = store.model_blob(pool_id)
        if blob is not None:
            model = load_model(blob, key, pool_id, snapshot.labels_version)
    fitted_here = model is None
    request = RankRequest(
        features,
        snapshot.labeled_rows,
        snapshot.label_texts,
        snapshot.model_spec,
        seed=snapshot.seed,
        version=snapshot.version,
        model=model,
        strategies=(*ALWAYS_RANKED, *snapshot.strategies),
        horizon=settings.batch_horizon,
        featurizer=snapshot.featurizer,
        eval_rows=snapshot.eval_rows,
    )
    signed = fit_seconds = None
    if is_sharded(features, settings) and not is_cold(snapshot.label_texts):
        # Fit here once, as unsharded; shard jobs score the rows with this very model, signed.
        began = time.perf_counter()
        if model is None:
            model = fit_model(request)
        fit_seconds = time.perf_counter() - began
        signed = dump_model(model, key, pool_id, snapshot.labels_version, settings.max_model_bytes)
        proba, ranked = score_in_shards(redis, job_id, snapshot, settings, features, model, signed, request.strategies)
        request = replace(request, model=model, proba=proba, ranked=ranked)
    result = rank_pool(request)
    if fit_seconds is not None:
        result.fit_seconds, result.score_seconds = fit_seconds, time.perf_counter() - began - fit_seconds
    model_version = None if result.cold_start else snapshot.labels_version
    assessed = (
        None
        if result.cold_start
        else review(
            ModelRun(
                model_version=model_version,
                classes=result.classes,
                proba=result.proba,
                fit_seconds=result.fit_seconds,
                score_seconds=result.score_seconds,
                reused=not fitted_here,
            ),
            PoolData(
                features=features,
                labeled=snapshot.labeled,
                unlabeled=result.orders["random"][0],
                spec=snapshot.model_spec,
                seed=snapshot.seed,
                featurizer=snapshot.featurizer,
            ),
            Past(
                history=snapshot.history,
                stop_rows=snapshot.stop_rows,
                previous_stop=snapshot.previous_stop,
                policy=snapshot.policy,
            ),
        )
    )
    return Published(
        version=snapshot.version,
        labels_version=snapshot.labels_version,
        model_version=model_version,
        model_classes=result.classes,
        model_blob=(
            (signed or dump_model(result.model, key, pool_id, model_version, settings.max_model_bytes))
            if fitted_here and result.model is not None
            else None
        ),
        proba=result.proba,
        n_ranked=len(result.orders["random"][0]),
        rankings=result.orders,
        finished_at=time.time(),
        duration_s=time.perf_counter() - started,
        cold_start=result.cold_start,
        review=assessed,
    )
