"""Every job id Sieve makes, and the pool an id names: `<kind>-<pool id>-<suffix>`.

A job id is a key too: RQ stores the job under it, and a pool's pending and running marks hold it. The
suffix makes an id deterministic where running a job twice would be wasted (a change's refresh, by
version; a push, by ranking) and random where each request must run (a sync, a training).
"""

from __future__ import annotations

import re
import secrets

REFRESH = "refresh"
PUSH = "lspush"
SYNC = "lssync"
TRAIN = "lstrain"
SHARD = "shard"
KINDS = (REFRESH, PUSH, SYNC, TRAIN, SHARD)
KIND_PATTERN = "|".join(KINDS)
"""The kinds as a regular expression's alternatives, for a pattern that finds a job id inside a path."""

_JOB_ID = re.compile(rf"^(?:{KIND_PATTERN})-([0-9a-f]+)-[0-9a-z]+$")


def pool_of_job(job_id: str) -> str | None:
    """The pool a job of Sieve's works on, from its id; None for an id Sieve does not make."""
    match = _JOB_ID.match(job_id)
    return match.group(1) if match else None


def _nonce() -> str:
    return secrets.token_hex(4)


def prefix(kind: str, pool_id: str) -> str:
    """What every id of one kind (of KINDS) for one pool starts with."""
    return f"{kind}-{pool_id}-"


def refresh_prefix(pool_id: str) -> str:
    """A change's refresh is `<prefix><version>`: the scripts that change a pool append the version they
    made (ARGV, so that the scripts spell no id), and changes coalesce into one job per version."""
    return prefix(REFRESH, pool_id)


def refresh(pool_id: str, version: int) -> str:
    """The id the scripts give the refresh of the pool's `version`."""
    return f"{refresh_prefix(pool_id)}{version}"


def recovered_refresh(pool_id: str) -> str:
    """A refresh the sweeper asks for again, its first having been lost."""
    return f"{refresh_prefix(pool_id)}r{_nonce()}"


def deferred_refresh(pool_id: str) -> str:
    """A refresh handed on by one that found another refresh of its pool running."""
    return f"{refresh_prefix(pool_id)}d{_nonce()}"


def training_refresh(pool_id: str) -> str:
    """A refresh asked for by Label Studio's Start Training."""
    return f"{refresh_prefix(pool_id)}t{_nonce()}"


def shard_run() -> str:
    """Names one run of a sharded refresh: its shards' keys and jobs (a retried refresh is a new run)."""
    return _nonce()


def shard(pool_id: str, run: str, index: int) -> str:
    """Shard `index` of a sharded refresh's run."""
    return f"{prefix(SHARD, pool_id)}{run}x{index}"


def push(pool_id: str, ranked_version: int) -> str:
    """The push of one ranking to Label Studio: one per ranking."""
    return f"{prefix(PUSH, pool_id)}{ranked_version}"


SYNC_ASKED = "s"
SYNC_PERIODIC = "p"
"""Queued by the sweeper, once per sync period."""
SYNC_SETUP = "u"
"""Queued when a project is set up, for what Label Studio holds from before."""


def sync(pool_id: str, why: str = SYNC_ASKED) -> str:
    """A sync with Label Studio; `why` (SYNC_*) is a letter in the id that tells who asked."""
    return f"{prefix(SYNC, pool_id)}{why}{_nonce()}"


def train(pool_id: str) -> str:
    """Label Studio's Start Training."""
    return f"{prefix(TRAIN, pool_id)}{_nonce()}"
