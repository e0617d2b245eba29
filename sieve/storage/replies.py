"""Decoding Redis replies, and the one error every lookup of a missing pool raises."""
from __future__ import annotations

from ..core.errors import NotFound


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def int_or_none(value) -> int | None:
    return int(value) if value not in (None, "", b"") else None


def decode_hash(raw: dict) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}


def pool_not_found(pool_id: str) -> NotFound:
    return NotFound(f"pool {pool_id} does not exist", field="pool_id")
