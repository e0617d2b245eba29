"""RQ job functions: they take ids, never arrays or pickles, and let failures propagate to RQ."""
from __future__ import annotations

import time

import numpy as np
from rq import get_current_job

from ..core.training import rank_pool
from ..settings import Settings
from ..storage.models import dump_model, load_model
from ..storage.refresh import Published, RefreshStore
from .cache import FeatureCache

# Process-local on purpose: a worker keeps the features of the pools it serves between jobs.
_features = FeatureCache(max_bytes=Settings.from_env().worker_cache_bytes)


def refresh_pool(pool_id: str) -> dict:
    """Retrains the pool's model on its current labels and rewrites every strategy's ranking."""
    job = get_current_job()
    settings = Settings.from_env()
    key = settings.require_secret_key()
    store = RefreshStore(job.connection)
    snapshot = store.claim(pool_id, job.id, ttl_ms=settings.job_timeout * 1000)
    if snapshot is None:
        return {"pool_id": pool_id, "outcome": "gone"}
    if snapshot.ranked_version == snapshot.version:
        # A duplicate or re-run job: the rankings already reflect this version, so nothing changes.
        store.release(pool_id, job.id)
        return {"pool_id": pool_id, "outcome": "up to date", "version": snapshot.version}
    started = time.perf_counter()
    try:
        features = _features.rows(job.connection, pool_id, snapshot.n_items, snapshot.dim)
        model = None
        if snapshot.model_version == snapshot.labels_version:
            # Only items changed since the last fit: reuse the model, score the new rows too.
            blob = store.model_blob(pool_id)
            if blob is not None:
                model = load_model(blob, key, pool_id, snapshot.labels_version)
        fitted_here = model is None
        result = rank_pool(features, snapshot.labeled_rows, snapshot.label_texts, snapshot.model_spec,
                           seed=snapshot.seed, version=snapshot.version, model=model)
        model_version = None if result.cold_start else snapshot.labels_version
        published = Published(
            version=snapshot.version, labels_version=snapshot.labels_version, model_version=model_version,
            model_classes=result.classes,
            model_blob=(dump_model(result.model, key, pool_id, model_version)
                        if fitted_here and result.model is not None else None),
            proba=result.proba, n_ranked=len(result.orders["random"][0]),
            rankings={name: result.orders.get(name, (np.zeros(0), np.zeros(0)))
                      for name in ("least_confidence", "margin", "entropy", "random")},
            finished_at=time.time(), duration_s=time.perf_counter() - started,
            cold_start=result.cold_start)
        outcome = store.publish(pool_id, job.id, published)
    except Exception as error:
        store.record_failure(pool_id, job.id, f"{type(error).__name__}: {error}")
        raise
    return {"pool_id": pool_id, "outcome": outcome, "version": snapshot.version,
            "labels_version": snapshot.labels_version, "model_version": model_version,
            "duration_s": round(time.perf_counter() - started, 4)}
