"""Redis clients built from settings."""
from __future__ import annotations

from redis import Redis

from ..settings import Settings


def connect(settings: Settings) -> Redis:
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set; `sieve up` starts an embedded Redis and sets it")
    return Redis.from_url(settings.redis_url, health_check_interval=30, socket_keepalive=True)
