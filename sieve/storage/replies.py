"""Decoding Redis replies, and the one error every lookup of a missing pool raises."""

from __future__ import annotations

import json
from functools import lru_cache

from sieve.core.errors import NotFound
from sieve.core.stopping import with_budget


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def int_or_none(value) -> int | None:
    return int(value) if value not in (None, "", b"") else None


def decode_hash(raw: dict) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def pool_not_found(pool_id: str) -> NotFound:
    return NotFound(f"pool {pool_id} does not exist", field="pool_id")


@lru_cache(maxsize=1024)
def _model_reasons(stored: str) -> tuple[str, ...]:
    # Cached: every query of a pool reads the same few stored recommendations until the next refresh.
    return tuple(json.loads(stored)["reasons"]) if stored else ()


def stop_answer(stored: str | None, n_labeled: int, budget: int | None) -> dict:
    """{"recommended", "reasons"}: the model rules' recommendation a refresh stored in the pool's meta,
    plus the budget checked against the live label count."""
    return with_budget(list(_model_reasons(stored or "")), n_labeled, budget)
