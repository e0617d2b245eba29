"""Loads the Lua scripts once per client; each runs atomically inside Redis."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis import Redis
from redis.commands.core import Script


def _source(name: str) -> str:
    folder = resources.files("sieve.storage") / "lua"
    text = (folder / f"{name}.lua").read_text()
    if name in ("add_items", "teach", "release", "want", "unlabel", "query", "set_stopping", "create_pool"):
        text = (folder / "common.lua").read_text() + "\n" + text
    return text


@dataclass(frozen=True)
class Scripts:
    add_items: Script
    teach: Script
    claim: Script
    publish: Script
    query: Script
    finish: Script
    release: Script
    create_pool: Script
    index_pool: Script
    heartbeat: Script
    recover: Script
    recover_lost: Script
    defer: Script
    want: Script
    unlabel: Script
    set_stopping: Script
    adopt_pool: Script

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(
            **{
                name: redis.register_script(_source(name))
                for name in (
                    "add_items",
                    "teach",
                    "claim",
                    "publish",
                    "query",
                    "finish",
                    "release",
                    "create_pool",
                    "index_pool",
                    "heartbeat",
                    "recover",
                    "recover_lost",
                    "defer",
                    "want",
                    "unlabel",
                    "set_stopping",
                    "adopt_pool",
                )
            }
        )
