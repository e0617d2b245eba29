"""Bearer API keys: who is calling, and which pools they may see; another tenant's pool is a 404."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from functools import partial

from flask import Flask, g, request

from sieve.service.problems import problem, unauthorized
from sieve.storage.api_keys import ApiKeys
from sieve.storage.job_ids import KIND_PATTERN

_challenge = partial(unauthorized, challenge='Bearer realm="sieve"')

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.yaml"})
OWN_AUTH_PREFIX = "/labelstudio/"
"""Label Studio cannot send bearer keys: http/labelstudio.py checks its calls itself."""
METRICS_PATH = "/metrics"
_POOL_IN_PATH = re.compile(rf"^/v1/(?:pools/|jobs/(?:{KIND_PATTERN})-)([0-9a-f]+)(?:[/-]|$)")

SWITCH_TTL_SECONDS = 1.0
"""How long a process trusts its last look at whether keys are required: the first key ever created
takes effect within this time, and the hot path saves a Redis round trip per request."""


def _metrics_refused(token: str, keys_required) -> object | None:
    """/metrics names every tenant's pools, so no tenant's key opens it: its own token does, when set;
    without one it is open only while auth is off."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token:
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return _challenge("/metrics needs `Authorization: Bearer <SIEVE_METRICS_TOKEN>`")
    if keys_required():
        return _challenge(
            "/metrics is closed while API keys are in use: set SIEVE_METRICS_TOKEN on the API "
            "and give it to the scraper"
        )
    return None


class KeysSwitch:
    """Whether API keys are required, as this process last looked (at most SWITCH_TTL_SECONDS ago)."""

    def __init__(self, keys: ApiKeys):
        self._keys = keys
        self._required = False
        self._until = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now >= self._until:
            self._required, self._until = self._keys.required(), now + SWITCH_TTL_SECONDS
        return self._required


def install(
    app: Flask,
    keys: ApiKeys,
    keys_required: Callable[[], bool],
    owner_of: Callable[[str], str | None],
    metrics_token: str = "",
) -> None:
    """Checks every request's credentials; `owner_of` names a pool's tenant ("" for none; None: no such pool)."""

    @app.before_request
    def _authenticate():
        g.tenant = None
        if request.path in OPEN_PATHS or request.path.startswith(OWN_AUTH_PREFIX):
            return None
        if request.path == METRICS_PATH:
            return _metrics_refused(metrics_token, keys_required)
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            g.tenant = keys.tenant_of(token.strip()) if scheme.lower() == "bearer" else None
            if g.tenant is None:
                return _challenge("the API key is not valid: send `Authorization: Bearer <key>`")
        elif keys_required():
            return _challenge("this Sieve needs an API key: send `Authorization: Bearer <key>`")
        match = _POOL_IN_PATH.match(request.path)
        if match and g.tenant is not None:
            owner = owner_of(match.group(1))
            if owner is not None and owner != g.tenant:
                # The same answer as for a pool that does not exist: ids of others' pools stay secret.
                return problem(
                    404, f"pool {match.group(1)} does not exist", [{"field": "pool_id", "message": "no such pool"}]
                )
        return None
