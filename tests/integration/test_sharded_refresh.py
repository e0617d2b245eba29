"""A pool above SIEVE_SHARD_ROWS is refreshed in shard jobs, and publishes the very rankings, bit for bit, that
an unsharded refresh of the same pool publishes: two stacks, real workers, the same pool made on each."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sieve.core.fitting import SCORING_ROWS
from sieve.core.registry import REGISTRY
from sieve.job_queue import refresh_queue
from sieve.settings import Settings
from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from tests.stack import Stack, hermetic_env

N_ITEMS = 2 * SCORING_ROWS + 5_000
"""Three shards of SCORING_ROWS rows at most."""

ASKED_FOR = ("qbc_vote_entropy", "qbc_kl", "density_weighted", "ratio_of_confidence", "kcenter", "badge")
"""Ranked after the pool's own strategy (auto) and the four every refresh ranks, once a query asks."""


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    sharded = Stack(root / "sharded", env=hermetic_env(SIEVE_SHARD_ROWS=str(SCORING_ROWS)), workers=2)
    whole = Stack(root / "whole", env=hermetic_env(), workers=1)
    with sharded, whole:
        yield sharded, whole


def _items_and_labels():
    rng = np.random.default_rng(21)
    # Few distinct rows repeated over the pool: equal scores in every shard, so ties cross shard bounds.
    distinct = rng.normal(size=(80, 6)).round(3)
    rows = distinct[rng.integers(0, len(distinct), N_ITEMS)]
    items = [{"id": f"i{n}", "features": row.tolist()} for n, row in enumerate(rows)]
    taught = rng.choice(N_ITEMS, 300, replace=False)
    labels = [(f"i{n}", ("a", "b", "c")[int(rows[n, 0] > 0) + int(rows[n, 1] > 0.4)]) for n in taught]
    return items, labels[:240], labels[240:]


def _refresh_everything(stack: Stack) -> str:
    """Makes the same pool on the stack, asks for every strategy, teaches evaluation labels; its id once idle."""
    items, train, evaluation = _items_and_labels()
    with stack.client(timeout=120) as client:
        pool_id = client.create_pool(items, train, model={"type": "logistic_regression"}, random_state=5)["pool_id"]
        for strategy in ASKED_FOR:
            client.query(pool_id, 3, strategy=strategy, lease_seconds=0, pending_timeout=120)
        client.teach(pool_id, evaluation, split="eval")
        client.wait_idle(pool_id, timeout=120, raise_on_error=True)
    return pool_id


def _published(stack: Stack, pool_id: str) -> dict:
    redis, keys = stack.redis(), PoolKeys(pool_id)
    meta = {k.decode(): v.decode() for k, v in redis.hgetall(keys.meta).items()}
    out = {"proba": redis.get(keys.proba), "history": json.loads(redis.hget(keys.history, meta["model_version"]))}
    for strategy in meta["ranked_strategies"].split(","):
        out[strategy] = (redis.get(keys.rank(strategy)), redis.get(keys.score(strategy)))
    return {"meta": meta, **out}


def _shard_jobs(stack: Stack, pool_id: str) -> list[str]:
    finished = []
    for queue in refresh_queue(stack.redis(), Settings.from_env({})).all():
        finished += queue.finished_job_registry.get_job_ids()
    return [job_id for job_id in finished if job_id.startswith(job_ids.prefix(job_ids.SHARD, pool_id))]


def test_a_sharded_refresh_publishes_exactly_the_unsharded_rankings(stacks):
    sharded, whole = stacks
    pool_sharded, pool_whole = _refresh_everything(sharded), _refresh_everything(whole)
    assert _shard_jobs(sharded, pool_sharded), "the pool above SIEVE_SHARD_ROWS was not refreshed in shards"
    assert not _shard_jobs(whole, pool_whole)
    got, expected = _published(sharded, pool_sharded), _published(whole, pool_whole)
    ranked = expected["meta"]["ranked_strategies"].split(",")
    assert set(ranked) == {*REGISTRY.always_ranked, "auto", *ASKED_FOR}
    assert got["meta"]["ranked_strategies"].split(",") == ranked
    assert got["meta"]["version"] == expected["meta"]["version"]
    assert got["proba"] == expected["proba"]
    for strategy in ranked:
        order, scores = got[strategy]
        assert order == expected[strategy][0], f"{strategy}: another order"
        assert scores == expected[strategy][1], f"{strategy}: other scores"
        rows = np.frombuffer(order, dtype="<u4")
        assert len(rows) == int(got["meta"]["n_ranked"]) == len(set(rows.tolist()))
    # The review measured the model on the evaluation items from the same probabilities.
    assert got["history"]["metrics"]["source"] == "eval"
    assert got["history"]["metrics"] == expected["history"]["metrics"]
    # The shards' keys went with their refresh.
    assert sharded.redis().keys(PoolKeys(pool_sharded).every_shard_key) == []
