"""What a worker process builds once at start and its jobs share: the settings and the feature cache.

Jobs take only ids (they are read back from Redis), so what they need beyond their pool comes from here,
set by `run_worker` before the first job, never from the environment during a job."""

from __future__ import annotations

from dataclasses import dataclass

from sieve.settings import Settings
from sieve.workers.feature_cache import FeatureCache


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    features: FeatureCache
    """Pools' feature rows kept between jobs: items are append-only, so a job reads only new rows."""


_current: WorkerContext | None = None


def start(settings: Settings) -> WorkerContext:
    """Sets up this process's context; called once by the worker before it takes a job."""
    global _current
    _current = WorkerContext(settings=settings, features=FeatureCache(max_bytes=settings.worker_cache_bytes))
    return _current


def context() -> WorkerContext:
    if _current is None:
        raise RuntimeError("Sieve's jobs run in `sieve worker`, which sets up their settings first")
    return _current
