"""API keys: Redis keeps only a digest of each secret; a presented key is checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from redis import Redis

from sieve.storage.keys import API_KEYS, AUTH_REQUIRED

_TOKEN = re.compile(r"^sk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant: str
    name: str
    created_at: float


class ApiKeys:
    def __init__(self, redis: Redis):
        self.redis = redis

    def create(self, tenant: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key for `tenant`; the token is returned once and never stored."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = ApiKey(key_id=key_id, tenant=tenant, name=name, created_at=time.time())
        record = {"tenant": tenant, "name": name, "created_at": key.created_at, "digest": _digest(secret)}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(API_KEYS, key_id, json.dumps(record))
        pipe.set(AUTH_REQUIRED, 1)
        pipe.execute()
        return key, f"sk_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        keys = []
        for key_id, raw in self.redis.hgetall(API_KEYS).items():
            record = json.loads(raw)
            keys.append(
                ApiKey(
                    key_id=key_id.decode(),
                    tenant=record["tenant"],
                    name=record["name"],
                    created_at=record["created_at"],
                )
            )
        return sorted(keys, key=lambda k: k.created_at)

    def revoke(self, key_id: str) -> bool:
        return bool(self.redis.hdel(API_KEYS, key_id))

    def required(self) -> bool:
        """Whether requests must carry a key: true from the first key ever created on."""
        return bool(self.redis.exists(AUTH_REQUIRED))

    def tenant_of(self, token: str) -> str | None:
        """The tenant a presented token belongs to, or None when it is not a live key."""
        match = _TOKEN.match(token)
        raw = self.redis.hget(API_KEYS, match.group(1)) if match else None
        if raw is None:
            # Same work either way, so timing tells nothing about which ids exist.
            hmac.compare_digest(_digest(token), _digest(""))
            return None
        record = json.loads(raw)
        return record["tenant"] if hmac.compare_digest(_digest(match.group(2)), record["digest"]) else None
