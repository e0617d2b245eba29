"""Every strategy is served over HTTP: rankings made on first use, batch strategies as batch orders."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sieve.core.selection import ALL_STRATEGIES, Candidates, select
from sieve.storage.keys import PoolKeys
from tests.helpers import ApiClient, items_of
from tests.stack import running_service


def _blobs(seed=0, per_blob=40, dim=3):
    rng = np.random.default_rng(seed)
    centers = np.array([[-6, 0, 0], [6, 0, 0], [0, 6, 0]])
    X = np.vstack([rng.normal(c, 1.0, size=(per_blob, dim)) for c in centers])
    y = np.repeat(["a", "b", "c"], per_blob)
    return X, y


def _pool(api, X, y, labeled=(0, 40, 80), **options) -> str:
    labels = [{"id": f"i{r}", "label": str(y[r])} for r in labeled]
    pool = api.create_pool(items=items_of(X), labels=labels, random_state=3, **options)
    api.wait_idle(pool)
    return pool


def ids(answer):
    return [item["id"] for item in answer["items"]]


@pytest.mark.parametrize("strategy", [s for s in ALL_STRATEGIES])
def test_every_strategy_answers_k_distinct_unlabeled_items(api, strategy):
    X, y = _blobs()
    pool = _pool(api, X, y)
    answer = api.query(pool, k=7, strategy=strategy, lease_seconds=0)
    assert answer["strategy"] == strategy and answer["cold_start"] is False
    got = ids(answer)
    assert len(got) == len(set(got)) == 7 and not {"i0", "i40", "i80"} & set(got)
    scores = [item["score"] for item in answer["items"]]
    assert scores == sorted(scores, reverse=True)


def test_a_strategy_once_asked_for_is_ranked_at_every_refresh(api, redis):
    X, y = _blobs()
    pool = _pool(api, X, y)
    meta = PoolKeys(pool).meta
    assert b"qbc_vote_entropy" not in redis.hget(meta, "ranked_strategies")
    api.query(pool, k=3, strategy="qbc_vote_entropy", lease_seconds=0)
    api.teach(pool, [("i1", "a")])
    api.wait_idle(pool)
    assert b"qbc_vote_entropy" in redis.hget(meta, "ranked_strategies")
    assert redis.hget(meta, "wanted") == b"qbc_vote_entropy"


def test_a_kcenter_query_answers_the_greedy_core_set_and_the_next_query_continues_it(api):
    X, y = _blobs()
    pool = _pool(api, X, y, strategy="kcenter")
    first, second = ids(api.query(pool, k=4)), ids(api.query(pool, k=4))
    labeled = np.array([0, 40, 80])
    candidates = Candidates(
        features=X.astype(np.float32),
        unlabeled=np.setdiff1d(np.arange(len(X)), labeled),
        labeled=labeled,
        labels=y[labeled],
        proba=np.full((len(X), 3), 1 / 3),
        model=None,
        spec={},
        rng=np.random.default_rng(0),
    )
    # Greedy k-center is the same batch whatever k, cut short: two leased slices make the batch of 8.
    expected = [f"i{r}" for r in select("kcenter", candidates, 8)]
    assert first + second == expected


def test_a_cold_pool_starts_with_a_diverse_batch_from_every_cluster(api):
    X, _ = _blobs()
    pool = api.create_pool(items=items_of(X), random_state=5)
    answer = api.query(pool, k=3, strategy="margin", lease_seconds=0)
    assert answer["cold_start"] is True
    assert sorted(int(i[1:]) // 40 for i in ids(answer)) == [0, 1, 2]


@pytest.fixture(scope="module")
def impatient_url(service_env, tmp_path_factory):
    """A second API on the same Redis and workers, one that never waits for a ranking."""
    env = {**service_env, "SIEVE_FIRST_RANKING_WAIT": "0"}
    with running_service(env, tmp_path_factory.mktemp("impatient-api"), workers=0) as url:
        yield url


def test_a_ranking_not_ready_yet_is_a_202_naming_the_job_to_poll(api, impatient_url):
    X, y = _blobs()
    pool = _pool(api, X, y)
    impatient = ApiClient(impatient_url)
    answer = impatient.get(f"/v1/pools/{pool}/query", params={"k": 3, "strategy": "badge"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "pending" and body["strategy"] == "badge" and body["job_id"]
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["Location"] == f"/v1/jobs/{body['job_id']}"
    deadline = time.monotonic() + 60
    while impatient.get(answer.headers["Location"]).json()["status"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(ids(impatient.query(pool, k=3, strategy="badge"))) == 3
