"""The refresh job's scripts: claim, heartbeat, finish, defer, recover, recover_lost and publish."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sieve.core.errors import NotFound
from sieve.core.history import Review
from sieve.core.selection import ALL_STRATEGIES
from sieve.storage import features as feature_storage
from sieve.storage.keys import PoolKeys
from sieve.storage.pool_store import Idempotency
from sieve.storage.rankings import read_all, read_top
from tests.storage.support import PENDING_TTL_MS, features, make_pool, meta_of, published, rank, snapshot

TTL = 10_000


def pending_job(db, pool_id):
    raw = db.get(PoolKeys(pool_id).pending)
    return raw.decode() if raw else None


# -- claim ------------------------------------------------------------------------------------------


def test_claim_takes_the_pending_mark_marks_the_job_running_and_reads_a_snapshot(db, pools, refresh):
    pool_id = make_pool(pools, labels={"i2": "b", "i0": "a"})
    pools.teach(pool_id, ["i4"], ["a"], splits=["eval"])
    pools.want(pool_id, "entropy")
    keys = PoolKeys(pool_id)
    job = pending_job(db, pool_id)
    status, snap = refresh.claim(pool_id, job, TTL)
    assert status == "ok"
    assert not db.exists(keys.pending)
    assert db.get(keys.running) == job.encode()
    assert 0 < db.pttl(keys.running) <= TTL
    assert (snap.version, snap.labels_version, snap.n_items, snap.dim, snap.seed) == (4, 1, 6, 3, 7)
    assert snap.labeled_rows.tolist() == [0, 2] and snap.label_texts == ['"a"', '"b"']
    assert snap.eval_rows.tolist() == [4] and snap.eval_texts == ['"a"']
    assert snap.eval_source == "eval"  # i4 was labeled `eval` by the client, not served as an audit item
    assert snap.strategies == ["margin", "entropy"]
    assert (snap.model_version, snap.ranked_version, snap.stop_rows, snap.previous_stop) == (None, None, None, None)


def test_evaluation_items_that_are_all_audit_items_have_the_source_audit(db, pools, refresh):
    pool_id = make_pool(pools, labels={"i2": "b", "i0": "a"})
    db.sadd(PoolKeys(pool_id).audit, 4, 5)
    pools.teach(pool_id, ["i4"], ["a"])
    assert refresh.claim(pool_id, pending_job(db, pool_id), TTL)[1].eval_source == "audit"
    db.delete(PoolKeys(pool_id).running)
    pools.teach(pool_id, ["i3"], ["a"], splits=["eval"])
    assert refresh.claim(pool_id, pending_job(db, pool_id), TTL)[1].eval_source == "eval"


def test_a_change_after_the_claim_asks_for_one_more_refresh(db, pools, refresh):
    pool_id = make_pool(pools)
    refresh.claim(pool_id, pending_job(db, pool_id), TTL)
    change = pools.teach(pool_id, ["i0"], ["a"])
    assert change.job_id == f"refresh-{pool_id}-2" == pending_job(db, pool_id)


def test_claim_waits_while_another_refresh_runs_and_gives_way_to_a_newer_one(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    first = pending_job(db, pool_id)
    assert refresh.claim(pool_id, first, TTL)[0] == "ok"
    second = pools.teach(pool_id, ["i0"], ["a"]).job_id
    # The second job keeps its pending mark while it waits, so changes still coalesce into it.
    assert refresh.claim(pool_id, second, TTL) == ("busy", None)
    assert pending_job(db, pool_id) == second
    assert pools.teach(pool_id, ["i1"], ["a"]).job_id is None
    # A job whose pending mark passed to a newer one has nothing to do.
    assert refresh.claim(pool_id, "older", TTL) == ("covered", None)
    # The first one may run again (a retry of the same job) while it holds the mark.
    assert refresh.claim(pool_id, first, TTL)[0] == "ok"
    assert db.get(keys.running) == first.encode()


def test_claim_of_a_deleted_pool_writes_nothing(db, pools, refresh):
    pool_id = make_pool(pools)
    pools.delete(pool_id)
    assert refresh.claim(pool_id, "job", TTL) == ("gone", None)
    assert db.dbsize() == 0


# -- heartbeat and finish ---------------------------------------------------------------------------


def test_a_heartbeat_renews_only_the_jobs_own_mark(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    job = pending_job(db, pool_id)
    refresh.claim(pool_id, job, 1_000)
    assert refresh.beat(pool_id, job, 60_000)
    assert db.pttl(keys.running) > 1_000
    assert not refresh.beat(pool_id, "another", 120_000)
    assert db.pttl(keys.running) <= 60_000
    db.delete(keys.running)
    assert not refresh.beat(pool_id, job, 60_000)
    assert not db.exists(keys.running)


def test_finish_records_the_error_and_clears_only_its_own_running_mark(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    job = pending_job(db, pool_id)
    refresh.claim(pool_id, job, TTL)
    refresh.record_failure(pool_id, "another", "boom")
    assert db.get(keys.running) == job.encode()
    assert meta_of(pools, pool_id)["last_error"] == "boom"
    refresh.release(pool_id, job)
    assert not db.exists(keys.running)
    assert meta_of(pools, pool_id)["last_error"] == "boom"  # nothing to do is no new error


def test_finish_never_recreates_a_deleted_pool(db, pools, refresh):
    pool_id = make_pool(pools)
    pools.delete(pool_id)
    refresh.record_failure(pool_id, "job", "boom")
    assert db.dbsize() == 0


# -- defer ------------------------------------------------------------------------------------------


def test_defer_hands_the_pending_mark_to_a_new_job_only_while_the_pool_is_busy(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    waiting = pending_job(db, pool_id)
    # Not busy: nothing to defer.
    assert not refresh.defer(pool_id, waiting, "later", PENDING_TTL_MS)
    assert pending_job(db, pool_id) == waiting
    db.set(keys.running, "other")
    assert not refresh.defer(pool_id, "not-the-holder", "later", PENDING_TTL_MS)
    assert pending_job(db, pool_id) == waiting
    assert refresh.defer(pool_id, waiting, "later", PENDING_TTL_MS)
    assert pending_job(db, pool_id) == "later"
    assert 0 < db.pttl(keys.pending) <= PENDING_TTL_MS


# -- recover ----------------------------------------------------------------------------------------


def test_recover_asks_again_only_for_a_pool_behind_with_nothing_queued_or_running(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    assert not refresh.recover(pool_id, "new", PENDING_TTL_MS)  # one is queued
    db.delete(keys.pending)
    db.set(keys.running, "r")
    assert not refresh.recover(pool_id, "new", PENDING_TTL_MS)  # one is running
    db.delete(keys.running)
    db.hset(keys.meta, "last_error", "boom")
    assert not refresh.recover(pool_id, "new", PENDING_TTL_MS)  # failed: left to the next change
    db.hset(keys.meta, "last_error", "")
    db.hset(keys.meta, "ranked_version", 1)
    assert not refresh.recover(pool_id, "new", PENDING_TTL_MS)  # the rankings are current
    assert not db.exists(keys.pending)
    db.hset(keys.meta, "ranked_version", 0)
    assert refresh.recover(pool_id, "new", PENDING_TTL_MS)
    assert pending_job(db, pool_id) == "new"
    assert 0 < db.pttl(keys.pending) <= PENDING_TTL_MS
    assert not refresh.recover(pool_id, "newer", PENDING_TTL_MS)


def test_recover_of_a_pool_never_ranked_or_deleted(db, pools, refresh):
    pool_id = make_pool(pools)
    db.delete(PoolKeys(pool_id).pending)
    assert refresh.recover(pool_id, "new", PENDING_TTL_MS)
    pools.delete(pool_id)
    assert not refresh.recover(pool_id, "new", PENDING_TTL_MS)
    assert db.dbsize() == 0


# -- recover_lost -----------------------------------------------------------------------------------


def test_a_job_is_lost_only_when_two_looks_a_grace_apart_find_it_nowhere(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    lost = pending_job(db, pool_id)
    assert not refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 60_000, waiting=False)
    assert db.get(keys.lost) == lost.encode()
    # Too soon for the second look.
    assert not refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 60_000, waiting=False)
    assert pending_job(db, pool_id) == lost
    time.sleep(0.05)
    assert refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 20, waiting=False)
    assert pending_job(db, pool_id) == "new"
    assert not db.exists(keys.lost)


def test_a_job_seen_waiting_running_or_replaced_is_not_lost(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    lost = pending_job(db, pool_id)
    refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 0, waiting=False)
    assert db.exists(keys.lost)
    # Seen in its queue: the earlier look's mark ends.
    assert not refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 0, waiting=True)
    assert not db.exists(keys.lost)
    refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 0, waiting=False)
    db.set(keys.running, "r")
    assert not refresh.recover_lost(pool_id, lost, "new", PENDING_TTL_MS, 0, waiting=False)
    assert not db.exists(keys.lost)
    db.delete(keys.running)
    assert not refresh.recover_lost(pool_id, "another", "new", PENDING_TTL_MS, 0, waiting=False)
    assert pending_job(db, pool_id) == lost
    assert not db.exists(keys.lost)


# -- publish ----------------------------------------------------------------------------------------


def test_publish_stores_model_probabilities_rankings_and_versions(db, pools, refresh):
    pool_id = make_pool(pools, labels={"i0": "a", "i1": "b"})
    keys = PoolKeys(pool_id)
    refresh.claim(pool_id, "job", TTL)
    db.hset(keys.cursor, "margin", 3)
    db.sadd(keys.returned, 4)
    result = published(
        2,
        {"margin": ([5, 3, 2], [0.9, 0.5, 0.1]), "entropy": ([2, 3, 5], [3.0, 2.0, 1.0])},
        labels_version=1,
        model_version=1,
        n_rows=6,
        model_blob=b"signed-model",
    )
    assert refresh.publish(pool_id, "job", result) == "ok"
    assert not db.exists(keys.running, keys.cursor, keys.returned)
    assert db.get(keys.model) == b"signed-model"
    assert db.get(keys.proba) == result.proba.astype("<f4").tobytes()
    assert np.frombuffer(db.get(keys.rank("margin")), "<u4").tolist() == [5, 3, 2]
    assert np.frombuffer(db.get(keys.score("margin")), "<f8").tolist() == [0, 0, 0.1, 0.5, 0, 0.9]
    assert np.frombuffer(db.get(keys.rank("entropy")), "<u4").tolist() == [2, 3, 5]
    assert not any(db.exists(keys.rank(s), keys.score(s)) for s in ALL_STRATEGIES if s not in ("margin", "entropy"))
    meta = meta_of(pools, pool_id)
    assert (meta["ranked_version"], meta["ranked_labels_version"], meta["model_version"]) == ("2", "1", "1")
    assert (json.loads(meta["model_classes"]), meta["n_classes"], meta["n_ranked"]) == (['"a"', '"b"'], "2", "3")
    assert (meta["cold_start"], meta["ranked_strategies"], meta["last_error"]) == ("0", "margin,entropy", "")


def test_publish_refuses_an_older_or_equal_version(db, pools, refresh):
    pool_id = make_pool(pools)
    assert refresh.publish(pool_id, "job", published(3, {"margin": ([0, 1], [2.0, 1.0])})) == "ok"
    before = snapshot(db)
    assert refresh.publish(pool_id, "late", published(2, {"margin": ([1, 0], [2.0, 1.0])})) == "stale"
    assert refresh.publish(pool_id, "again", published(3, {"margin": ([1, 0], [2.0, 1.0])})) == "stale"
    assert snapshot(db) == before
    assert refresh.publish(pool_id, "newer", published(4, {"margin": ([1, 0], [2.0, 1.0])})) == "ok"
    assert np.frombuffer(db.get(PoolKeys(pool_id).rank("margin")), "<u4").tolist() == [1, 0]


def test_a_stale_publish_still_clears_its_own_running_mark(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    refresh.publish(pool_id, "job", published(3, {"margin": ([0], [1.0])}))
    db.set(keys.running, "late")
    assert refresh.publish(pool_id, "late", published(2, {"margin": ([0], [1.0])})) == "stale"
    assert not db.exists(keys.running)


def test_publish_to_a_deleted_pool_writes_nothing(db, pools, refresh):
    pool_id = make_pool(pools)
    pools.delete(pool_id)
    assert refresh.publish(pool_id, "job", published(3, {"margin": ([0], [1.0])}, model_version=1, n_rows=1)) == "gone"
    assert db.dbsize() == 0


def test_a_cold_start_publish_drops_the_model_and_a_reused_model_is_kept(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    refresh.publish(pool_id, "j", published(1, {"margin": ([0], [1.0])}, model_version=1, n_rows=6, model_blob=b"m"))
    # A refresh that reuses the model sends no blob: the stored one stays, the probabilities are new.
    refresh.publish(pool_id, "j", published(2, {"margin": ([1], [1.0])}, model_version=1, n_rows=7))
    assert db.get(keys.model) == b"m"
    assert len(db.get(keys.proba)) == 7 * 2 * 4
    refresh.publish(pool_id, "j", published(3, {"margin": ([2], [1.0])}))
    assert not db.exists(keys.model, keys.proba)
    assert meta_of(pools, pool_id)["cold_start"] == "1"


def _review(version: int, stop_rows: list[int], recommended: bool) -> Review:
    return Review(
        entry={"model_version": version, "n_labels": 2},
        model_stop={"recommended": recommended, "reasons": ["target"] if recommended else []},
        stop_rows=np.array(stop_rows),
        stop_labels=[f"v{version}"] * len(stop_rows),
    )


def test_publish_writes_the_history_entry_and_keeps_the_first_stop_set(db, pools, refresh):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    rankings = {"margin": ([0], [1.0])}
    refresh.publish(pool_id, "j", published(1, rankings, model_version=1, n_rows=6, review=_review(1, [1, 2], False)))
    refresh.publish(pool_id, "j", published(2, rankings, model_version=2, n_rows=6, review=_review(2, [3, 4], True)))
    assert np.frombuffer(db.get(keys.stop_set), "<u4").tolist() == [1, 2]
    assert json.loads(db.get(keys.stop_labels)) == {"model_version": 2, "labels": ["v2", "v2"]}
    assert {int(v): json.loads(e) for v, e in db.hgetall(keys.history).items()} == {
        1: {"model_version": 1, "n_labels": 2},
        2: {"model_version": 2, "n_labels": 2},
    }
    assert json.loads(meta_of(pools, pool_id)["stop"]) == {"recommended": True, "reasons": ["target"]}
    assert pools.status(pool_id)["estimate"] is None  # these entries carry none
    # The same model version again (items added): its entry is rewritten, not added.
    entry = _review(2, [5], False)
    entry.entry["n_labels"] = 3
    refresh.publish(pool_id, "j", published(3, rankings, model_version=2, n_rows=6, review=entry))
    assert db.hlen(keys.history) == 2
    assert json.loads(db.hget(keys.history, 2))["n_labels"] == 3
    assert np.frombuffer(db.get(keys.stop_set), "<u4").tolist() == [1, 2]


def test_publish_keeps_the_latest_estimate_in_the_meta_for_the_status(db, pools, refresh):
    pool_id = make_pool(pools)
    estimate = {"metric": "accuracy", "value": 0.8, "low": 0.7, "high": 0.88, "n": 50, "level": 0.9}
    review = _review(1, [1], False)
    review.entry["estimate"] = {**estimate, "source": "audit", "biased": False}
    refresh.publish(pool_id, "j", published(1, {"margin": ([0], [1.0])}, model_version=1, n_rows=6, review=review))
    assert pools.status(pool_id)["estimate"] == {**estimate, "source": "audit", "biased": False}
    refresh.publish(pool_id, "j", published(2, {"margin": ([0], [1.0])}))  # cold again: no model, no estimate
    assert pools.status(pool_id)["estimate"] is None


def test_a_deleted_pool_leaves_no_key_behind(db, pools, refresh, scripts, monkeypatch):
    monkeypatch.setattr(feature_storage, "ROWS_PER_CHUNK", 2)
    pool_id = make_pool(pools, n=5, labels={"i0": "a", "i1": "b"}, tenant="t")
    pools.add_items(pool_id, ["x"], features(1), idem=Idempotency("k", "h"))
    pools.teach(pool_id, ["i2"], ["a"], splits=["eval"])
    pools.want(pool_id, "entropy")
    db.sadd(PoolKeys(pool_id).audit, 3)
    refresh.claim(pool_id, "job", TTL)
    review = _review(1, [3, 4], False)
    result = published(
        4, {"margin": ([3, 4, 5], [3.0, 2.0, 1.0])}, model_version=1, n_rows=6, review=review, model_blob=b"m"
    )
    refresh.publish(pool_id, "job", result)
    read_top(db, scripts, pool_id, 1, None, lease_ms=TTL, annotator="ann")
    read_top(db, scripts, pool_id, 1, None, lease_ms=50)
    time.sleep(0.06)
    read_top(db, scripts, pool_id, 1, None, lease_ms=0)  # the expired lease's item is returned
    pools.teach(pool_id, ["x"], ["a"])
    keys = PoolKeys(pool_id)
    assert db.exists(keys.held, keys.returned, keys.cursor, keys.stop_set, keys.chunk(2)) == 5
    refresh.claim(pool_id, pending_job(db, pool_id), TTL)
    refresh.recover_lost(pool_id, "lost", "new", PENDING_TTL_MS, 0, waiting=False)
    db.set(keys.lost, "lost")
    pools.delete(pool_id)
    assert sorted(db.keys()) == []


def test_read_all_serves_the_whole_ranking_without_the_rows_labeled_since(db, pools, refresh):
    pool_id = make_pool(pools, n=12, labels={"i0": "a", "i1": "b"})
    order = [11, 3, 9, 2, 10, 4, 8, 5, 7, 6]
    scores = [float(20 - i) for i in range(len(order))]
    refresh.publish(pool_id, "j", published(2, {"margin": (order, scores)}, model_version=1, n_rows=12))
    pools.teach(pool_id, ["i9", "i10"], ["a", "b"])
    whole = read_all(db, pool_id)
    kept = [r for r in order if r not in (9, 10)]
    assert whole.ids == [f"i{r}" for r in kept]
    assert whole.scores.tolist() == [s for r, s in zip(order, scores) if r not in (9, 10)]
    np.testing.assert_allclose(whole.probabilities[:, 0], np.array(kept) / 100, rtol=1e-6)
    assert (whole.strategy, whole.ranked_version, whole.cold_start) == ("margin", 2, False)


def test_the_current_ranking_is_the_published_one_until_a_change_owes_a_refresh(pools, refresh):
    pool_id = make_pool(pools)
    assert refresh.current_ranking(pool_id) is None  # nothing published yet
    rank(refresh, pool_id, [0, 1, 2])
    version = int(meta_of(pools, pool_id)["version"])
    assert refresh.current_ranking(pool_id) == version
    pools.teach(pool_id, ["i1"], ["a"])
    assert refresh.current_ranking(pool_id) is None


def test_the_published_version_is_the_last_ranking_s_and_a_missing_pool_is_not_found(pools, refresh):
    pool_id = make_pool(pools)
    assert refresh.published_version(pool_id) is None
    rank(refresh, pool_id, [0, 1, 2])
    published_at = int(meta_of(pools, pool_id)["version"])
    pools.teach(pool_id, ["i1"], ["a"])  # a change owes a refresh, but the published ranking stays
    assert refresh.published_version(pool_id) == published_at
    with pytest.raises(NotFound):
        refresh.published_version("0123456789abcdef")
