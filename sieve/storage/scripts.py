"""Loads the Lua scripts once per client; each runs atomically inside Redis.

A script's name is its field of `Scripts` and its file, `lua/<name>.lua`: a field without a file fails
at load, and tests/unit/test_scripts.py fails on a file without a field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources

from redis import Redis
from redis.commands.core import Script

COMMON = "common"
"""lua/common.lua: the functions several scripts share, put before each script that calls one of them."""


def _read(name: str) -> str:
    return (resources.files("sieve.storage") / "lua" / f"{name}.lua").read_text()


@cache
def _common_functions() -> tuple[str, ...]:
    return tuple(re.findall(r"^local function (\w+)\(", _read(COMMON), flags=re.MULTILINE))


def source(name: str) -> str:
    """The text Redis runs for script `name`: the script, after common.lua if it calls a function of it."""
    text = _read(name)
    if any(re.search(rf"\b{function}\(", text) for function in _common_functions()):
        text = _read(COMMON) + "\n" + text
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
    store_shard: Script

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(**{name: redis.register_script(source(name)) for name in cls.names()})
