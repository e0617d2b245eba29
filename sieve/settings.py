"""Every setting, read from environment variables once, validated, and passed in explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from sieve.limits import DEFAULT_MAX_POOL_VALUES, MAX_FEATURE_DIM, MAX_POOL_ITEMS, MAX_POOL_VALUES_CEILING
from sieve.origins import OriginError, allow_list, origin


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "0").strip().lower()
    if value not in ("0", "1", "false", "true", ""):
        raise ValueError(f"{name} must be 1 or 0, got {value!r}")
    return value in ("1", "true")


def _number(env: Mapping[str, str], name: str, default, minimum, parse=int):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if parse is int else 'a number'}, got {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {raw}")
    return value


def _basic_auth(raw: str) -> str:
    if raw and (":" not in raw or raw.startswith(":")):
        raise ValueError("SIEVE_LABELSTUDIO_BASIC_AUTH must be user:password")
    return raw


def _max_pool_values(env: Mapping[str, str]) -> int:
    value = _number(env, "SIEVE_MAX_POOL_VALUES", DEFAULT_MAX_POOL_VALUES, 1)
    if value > MAX_POOL_VALUES_CEILING:
        raise ValueError(
            f"SIEVE_MAX_POOL_VALUES must be at most {MAX_POOL_VALUES_CEILING} "
            f"({MAX_POOL_ITEMS} items x {MAX_FEATURE_DIM} features), got {value}"
        )
    return value


_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|[0-9a-f:.]+")
"""A host name or an IP address (IPv6 without its brackets), as `origin` lower-cases it."""


def _cors_origins(raw: str) -> tuple[str, ...]:
    """SIEVE_CORS_ORIGINS: bare origins, normalised as browsers send them, or `*` alone."""
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    if "*" in entries:
        if len(entries) > 1:
            raise ValueError("SIEVE_CORS_ORIGINS: '*' (any origin) stands alone; list origins, or '*' only")
        return ("*",)
    out = []
    for entry in entries:
        try:
            normalised = origin(entry)
        except OriginError as error:
            raise ValueError(f"SIEVE_CORS_ORIGINS: {entry!r} {error}") from None
        # A browser's Origin names one host: a pattern (https://*.example.com) would never match it.
        if not _HOST.fullmatch(urlsplit(normalised).hostname):
            raise ValueError(f"SIEVE_CORS_ORIGINS: {entry!r} must be an origin such as https://labels.example.com")
        out.append(normalised)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Settings:
    """Configuration shared by the API, the workers and the CLI."""

    redis_url: str | None = None
    """REDIS_URL: the Redis to use; unset means `sieve up` starts the embedded one."""
    secret_key: bytes = field(default=b"", repr=False)
    """SIEVE_SECRET_KEY: signs model blobs; every API and worker process must share it."""
    data_dir: str = "sieve-data"
    """SIEVE_DATA_DIR: where `sieve up` keeps the embedded Redis's AOF and its secret key."""
    queue_name: str = "sieve"
    """SIEVE_QUEUE: the RQ queue the API enqueues on and the workers listen to."""
    job_timeout: int = 600
    """SIEVE_JOB_TIMEOUT: seconds a retrain may run before RQ stops it."""
    lease_seconds: float = 300.0
    """SIEVE_LEASE_SECONDS: how long a queried item stays reserved for its caller by default (0: no leases)."""
    job_retries: int = 3
    """SIEVE_JOB_RETRIES: how often RQ retries a failed retrain."""
    first_ranking_wait: float = 10.0
    """SIEVE_FIRST_RANKING_WAIT: how long a query on a brand-new pool waits for its first ranking."""
    max_waiting_queries: int = 16
    """SIEVE_MAX_WAITING_QUERIES: queries of one tenant that may wait at once in one API process; past it a
    query answers without waiting."""
    worker_cache_bytes: int = 2048 * 1024 * 1024
    """SIEVE_WORKER_CACHE_MB: how much pool feature data one worker keeps in memory."""
    max_model_bytes: int = 32 * 1024 * 1024
    """SIEVE_MAX_MODEL_MB: the largest stored model a refresh may publish (every /predict unpickles it);
    a refresh whose model is bigger fails and says so in `last_error`."""
    max_pool_values: int = DEFAULT_MAX_POOL_VALUES
    """SIEVE_MAX_POOL_VALUES: most feature values (items x dimension) one pool of vectors may hold; size it to
    the Redis memory (4 bytes a value) and worker cache (SIEVE_WORKER_CACHE_MB) a pool may take."""
    max_content_length: int = 64 * 1024 * 1024
    """SIEVE_MAX_BODY_BYTES: the largest request body accepted; bigger ones get 413."""
    batch_horizon: int = 256
    """SIEVE_BATCH_HORIZON: rows a batch strategy picks as one batch at each refresh (queries get slices)."""
    shard_rows: int = 524_288
    """SIEVE_SHARD_ROWS: a refresh of a pool with more rows than this scores them in shard jobs of about
    this many rows (rounded up to whole scoring blocks) that any worker can take."""
    labelstudio_basic_auth: str = field(default="", repr=False)
    """SIEVE_LABELSTUDIO_BASIC_AUTH: `user:password` that /labelstudio requires (basic auth); unset: none."""
    labelstudio_url: str = ""
    """SIEVE_LABELSTUDIO_URL: where workers reach Label Studio; unset: the hostname its /setup call gave."""
    labelstudio_origins: tuple[str, ...] = ()
    """SIEVE_LABELSTUDIO_ORIGINS: comma-separated `scheme://host[:port]` a /setup's hostname may name; unset:
    none, and workers call only SIEVE_LABELSTUDIO_URL."""
    labelstudio_token: str = field(default="", repr=False)
    """SIEVE_LABELSTUDIO_TOKEN: the Label Studio token workers push with; unset: the one /setup gave."""
    labelstudio_vector_field: str = "embedding"
    """SIEVE_LABELSTUDIO_VECTOR_FIELD: the task data field holding each task's vector in projects that are not
    text (an <Image>, <Audio>... with <Choices>), unless the ML backend's extra params name `vector_field`."""
    labelstudio_sync_seconds: int = 300
    """SIEVE_LABELSTUDIO_SYNC_SECONDS: how often workers make a linked pool's labels equal its Label Studio
    project's (annotations made, changed or deleted while Sieve was down send no webhook again)."""
    metrics_token: str = field(default="", repr=False)
    """SIEVE_METRICS_TOKEN: the bearer token /metrics requires; unset, /metrics is open while auth is off
    and refused once API keys exist (its series name every tenant's pools)."""
    max_pools_per_tenant: int = 1000
    """SIEVE_MAX_POOLS_PER_TENANT: most pools one tenant (or, with auth off, everyone) may hold at once."""
    cors_origins: tuple[str, ...] = ()
    """SIEVE_CORS_ORIGINS: comma-separated `scheme://host[:port]` whose web pages may call the API from a
    browser (CORS), or `*` for any (only with API keys); unset: none, and no CORS header is sent."""
    access_log: bool = False
    """SIEVE_ACCESS_LOG: `1` logs one line per request (about 50 µs of API CPU each); unset or `0`: none."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SIEVE_SECRET_KEY", "").encode(),
            data_dir=env.get("SIEVE_DATA_DIR", cls.data_dir),
            queue_name=env.get("SIEVE_QUEUE", cls.queue_name),
            job_timeout=_number(env, "SIEVE_JOB_TIMEOUT", cls.job_timeout, 1),
            job_retries=_number(env, "SIEVE_JOB_RETRIES", cls.job_retries, 0),
            lease_seconds=_number(env, "SIEVE_LEASE_SECONDS", cls.lease_seconds, 0.0, float),
            first_ranking_wait=_number(env, "SIEVE_FIRST_RANKING_WAIT", cls.first_ranking_wait, 0.0, float),
            max_waiting_queries=_number(env, "SIEVE_MAX_WAITING_QUERIES", cls.max_waiting_queries, 0),
            worker_cache_bytes=_number(env, "SIEVE_WORKER_CACHE_MB", 2048, 1) * 1024 * 1024,
            max_model_bytes=_number(env, "SIEVE_MAX_MODEL_MB", 32, 1) * 1024 * 1024,
            max_pool_values=_max_pool_values(env),
            max_content_length=_number(env, "SIEVE_MAX_BODY_BYTES", cls.max_content_length, 1024),
            batch_horizon=_number(env, "SIEVE_BATCH_HORIZON", cls.batch_horizon, 1),
            shard_rows=_number(env, "SIEVE_SHARD_ROWS", cls.shard_rows, 1),
            labelstudio_basic_auth=_basic_auth(env.get("SIEVE_LABELSTUDIO_BASIC_AUTH", "")),
            labelstudio_url=env.get("SIEVE_LABELSTUDIO_URL", ""),
            labelstudio_origins=allow_list(env.get("SIEVE_LABELSTUDIO_ORIGINS", "")),
            labelstudio_token=env.get("SIEVE_LABELSTUDIO_TOKEN", ""),
            labelstudio_vector_field=env.get("SIEVE_LABELSTUDIO_VECTOR_FIELD") or cls.labelstudio_vector_field,
            labelstudio_sync_seconds=_number(env, "SIEVE_LABELSTUDIO_SYNC_SECONDS", cls.labelstudio_sync_seconds, 1),
            metrics_token=env.get("SIEVE_METRICS_TOKEN", ""),
            max_pools_per_tenant=_number(env, "SIEVE_MAX_POOLS_PER_TENANT", cls.max_pools_per_tenant, 1),
            cors_origins=_cors_origins(env.get("SIEVE_CORS_ORIGINS", "")),
            access_log=_flag(env, "SIEVE_ACCESS_LOG"),
        )

    @property
    def pending_ttl_ms(self) -> int:
        """How long a queued refresh's mark lives: a crashed enqueue delays a refresh by at most this."""
        return (self.job_timeout + 60) * 1000

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    def require_secret_key(self) -> bytes:
        if len(self.secret_key) < 16:
            raise ValueError(
                "SIEVE_SECRET_KEY must be set to at least 16 characters, the same in every "
                "API and worker process (it signs the models kept in Redis); e.g. the output of `openssl rand -hex 32`"
            )
        return self.secret_key
