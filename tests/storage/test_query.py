"""Scripts query and release (through rankings.read_top and PoolStore.release): the frontier, leases,
returned items, a named annotator's own leases, and the budget's refusal."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sieve.core.errors import Conflict, InvalidInput
from sieve.core.stopping import StoppingPolicy
from sieve.storage.keys import PoolKeys
from sieve.storage.rankings import read_top
from tests.storage.support import config, make_pool, meta_of, published, rank, snapshot

LEASE = 60_000


@pytest.fixture
def ranked(pools, refresh):
    """A pool of six items whose margin ranking is i5, i4 ... i0, scored 6 down to 1."""
    pool_id = make_pool(pools, n=6)
    assert rank(refresh, pool_id, [5, 4, 3, 2, 1, 0]) == "ok"
    return pool_id


def top(db, scripts, pool_id, k, lease_ms=LEASE, annotator="", strategy=None):
    return read_top(db, scripts, pool_id, k, strategy, lease_ms=lease_ms, annotator=annotator)


def test_no_answer_before_the_first_ranking(db, pools, scripts):
    pool_id = make_pool(pools)
    answer = top(db, scripts, pool_id, 2)
    assert (answer.ready, answer.ids, answer.version, answer.ranked_version) == (False, [], 1, None)
    assert not db.exists(PoolKeys(pool_id).leases)


def test_a_pool_without_items_answers_at_once(db, pools, scripts):
    pool_id, _ = pools.create(config(), [], None, [], [])
    answer = top(db, scripts, pool_id, 2)
    assert (answer.ready, answer.ids, answer.ranked_version, answer.lease_expires_ms) == (True, [], 0, None)


def test_a_leased_item_is_not_handed_out_twice_while_its_lease_lasts(db, scripts, ranked):
    keys = PoolKeys(ranked)
    first = top(db, scripts, ranked, 2)
    assert first.ids == ["i5", "i4"]
    assert first.scores.tolist() == [6.0, 5.0]
    assert first.cold_start and first.probabilities is None
    now_ms = int(db.time()[0]) * 1000
    assert now_ms + LEASE - 2_000 < first.lease_expires_ms <= now_ms + LEASE + 1_000
    assert top(db, scripts, ranked, 2).ids == ["i3", "i2"]
    assert top(db, scripts, ranked, 5).ids == ["i1", "i0"]
    assert top(db, scripts, ranked, 5).ids == []
    assert {int(r) for r in db.zrange(keys.leases, 0, -1)} == {0, 1, 2, 3, 4, 5}
    assert set(db.hgetall(keys.lease_owners).values()) == {b""}
    assert not db.exists(keys.held)
    assert db.hget(keys.cursor, "margin") == b"6"


def test_a_read_without_a_lease_leases_nothing_and_answers_the_same(db, scripts, ranked):
    keys = PoolKeys(ranked)
    assert top(db, scripts, ranked, 3, lease_ms=0).ids == ["i5", "i4", "i3"]
    assert top(db, scripts, ranked, 3, lease_ms=0).ids == ["i5", "i4", "i3"]
    assert not db.exists(keys.leases, keys.lease_owners)


def test_expired_leases_come_back(db, scripts, ranked):
    keys = PoolKeys(ranked)
    assert top(db, scripts, ranked, 2, lease_ms=400).ids == ["i5", "i4"]
    assert top(db, scripts, ranked, 1).ids == ["i3"]
    time.sleep(0.45)
    # The expired rows are returned, and outrank the frontier's next ones.
    assert top(db, scripts, ranked, 3).ids == ["i5", "i4", "i2"]
    assert not db.exists(keys.returned)
    assert {int(r) for r in db.zrange(keys.leases, 0, -1)} == {5, 4, 3, 2}


def test_the_frontier_walks_past_labeled_items(db, pools, scripts, ranked):
    pools.teach(ranked, ["i5", "i3"], ["a", "b"])
    assert top(db, scripts, ranked, 2).ids == ["i4", "i2"]
    assert db.hget(PoolKeys(ranked).cursor, "margin") == b"4"


def test_released_items_come_back_first(db, pools, scripts, ranked):
    keys = PoolKeys(ranked)
    top(db, scripts, ranked, 3)
    assert pools.release(ranked, ["i4", "i0"]) == 1  # i0 had no lease
    assert db.smembers(keys.returned) == {b"4"}
    assert db.zscore(keys.leases, "4") is None and db.hget(keys.lease_owners, "4") is None
    assert top(db, scripts, ranked, 2).ids == ["i4", "i2"]
    assert not db.exists(keys.returned)


def test_release_naming_an_unknown_id_releases_nothing(db, pools, scripts, ranked):
    top(db, scripts, ranked, 2)
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        pools.release(ranked, ["i5", "zz"])
    assert refused.value.field == "ids[1]"
    assert snapshot(db) == before


def test_a_labeled_item_released_is_not_returned(db, pools, scripts, ranked):
    keys = PoolKeys(ranked)
    top(db, scripts, ranked, 2)
    # Labeled without ending the lease, as an item taught by its eval split would be in an older pool.
    db.setbit(keys.labeled, 5, 1)
    assert pools.release(ranked, ["i5"]) == 1
    assert not db.exists(keys.returned)


def test_a_named_annotator_gets_its_own_leases_again(db, scripts, ranked):
    keys = PoolKeys(ranked)
    assert top(db, scripts, ranked, 2, annotator="ann").ids == ["i5", "i4"]
    assert db.zrange(keys.held, 0, -1) == [b"ann\x004", b"ann\x005"]
    assert db.hget(keys.lease_owners, 5) == b"ann"
    assert top(db, scripts, ranked, 2, annotator="bob").ids == ["i3", "i2"]
    assert top(db, scripts, ranked, 2, annotator="ann").ids == ["i5", "i4"]
    assert top(db, scripts, ranked, 3, annotator="ann").ids == ["i5", "i4", "i1"]
    # An anonymous caller gets neither's.
    assert top(db, scripts, ranked, 3).ids == ["i0"]


def test_an_annotator_releases_only_its_own_leases(db, pools, scripts, ranked):
    keys = PoolKeys(ranked)
    top(db, scripts, ranked, 1, annotator="ann")
    top(db, scripts, ranked, 1, annotator="bob")
    assert pools.release(ranked, ["i5", "i4"], annotator="ann") == 1
    assert db.zrange(keys.held, 0, -1) == [b"bob\x004"]
    assert db.smembers(keys.returned) == {b"5"}
    assert pools.release(ranked, ["i4"]) == 1  # anyone's, without a name
    assert not db.exists(keys.held, keys.leases, keys.lease_owners)


def test_teaching_a_leased_item_ends_its_lease(db, pools, scripts, ranked):
    keys = PoolKeys(ranked)
    top(db, scripts, ranked, 2, annotator="ann")
    pools.teach(ranked, ["i5"], ["a"])
    assert db.zrange(keys.held, 0, -1) == [b"ann\x004"]
    assert top(db, scripts, ranked, 2, annotator="ann").ids == ["i4", "i3"]


def test_a_new_ranking_starts_from_the_top_but_skips_live_leases(db, pools, refresh, scripts, ranked):
    keys = PoolKeys(ranked)
    top(db, scripts, ranked, 2)
    pools.release(ranked, ["i4"])
    pools.teach(ranked, ["i0"], ["a"])
    assert rank(refresh, ranked, [1, 2, 3, 4, 5]) == "ok"
    assert not db.exists(keys.cursor, keys.returned)
    assert top(db, scripts, ranked, 3).ids == ["i1", "i2", "i3"]
    assert top(db, scripts, ranked, 3).ids == ["i4"]


def test_answers_carry_scores_and_probabilities_by_row(db, pools, refresh, scripts):
    pool_id = make_pool(pools, n=6, labels={"i0": "a", "i1": "b"})
    assert rank(refresh, pool_id, [4, 2, 5, 3], model_version=1, labels_version=1, n_rows=6) == "ok"
    answer = top(db, scripts, pool_id, 2)
    assert answer.ids == ["i4", "i2"]
    assert answer.model_classes == ["a", "b"] and not answer.cold_start
    np.testing.assert_allclose(answer.probabilities, [[0.04, 0.96], [0.02, 0.98]], rtol=1e-6)
    assert (answer.model_version, answer.ranked_version, answer.labels_version, answer.fresh) == (1, 2, 1, True)


def test_a_strategy_without_a_ranking_is_unranked_until_wanted_and_published(db, pools, refresh, scripts, ranked):
    keys = PoolKeys(ranked)
    answer = top(db, scripts, ranked, 2, strategy="entropy")
    assert (answer.ready, answer.unranked, answer.strategy) == (False, True, "entropy")
    db.delete(keys.pending)
    job_id = pools.want(ranked, "entropy")
    assert job_id == f"refresh-{ranked}-2"
    assert meta_of(pools, ranked)["wanted"] == "entropy"
    # Asking again, or for the pool's own strategy, changes nothing.
    before = snapshot(db)
    assert pools.want(ranked, "entropy") is None
    assert pools.want(ranked, "margin") is None
    assert snapshot(db) == before
    pools.want(ranked, "badge")
    assert meta_of(pools, ranked)["wanted"] == "entropy,badge"
    refresh.publish(
        ranked,
        "j",
        published(3, {"margin": ([0, 1], [2.0, 1.0]), "entropy": ([1, 0], [2.0, 1.0])}),
    )
    assert top(db, scripts, ranked, 1, strategy="entropy").ids == ["i1"]
    assert top(db, scripts, ranked, 1).ids == ["i0"]
    assert top(db, scripts, ranked, 1, strategy="badge").unranked


def test_a_spent_enforced_budget_refuses_the_query(db, pools, scripts, ranked):
    pools.set_stopping(ranked, StoppingPolicy(budget=2, enforce_budget=True))
    pools.teach(ranked, ["i0"], ["a"])
    assert top(db, scripts, ranked, 1).stop == {"recommended": False, "reasons": []}
    pools.teach(ranked, ["i1"], ["a"])
    before = snapshot(db)
    with pytest.raises(Conflict) as refused:
        top(db, scripts, ranked, 1)
    assert refused.value.field == "stopping.budget"
    assert snapshot(db) == before
    # Only recommended, not enforced: items are still handed out.
    pools.set_stopping(ranked, StoppingPolicy(budget=2))
    answer = top(db, scripts, ranked, 1)
    assert answer.ids == ["i4"]  # i5 went to the first query
    assert answer.stop["recommended"]


@pytest.fixture
def audited(pools, refresh):
    """Ten items, an audit rate of one half; margin ranks i9 ... i0 (scores 10 down to 1), the random
    ranking 3, 7, 1, 9, 0, 2, 4, 5, 6, 8."""
    pool_id = make_pool(pools, n=10, stopping=StoppingPolicy(audit_rate=0.5))
    version = int(meta_of(pools, pool_id)["version"])
    random_order = [3, 7, 1, 9, 0, 2, 4, 5, 6, 8]
    assert (
        refresh.publish(
            pool_id,
            "job",
            published(
                version,
                {
                    "margin": (list(range(9, -1, -1)), [float(s) for s in range(10, 0, -1)]),
                    "random": (random_order, [float(s) for s in range(10, 0, -1)]),
                },
            ),
        )
        == "ok"
    )
    return pool_id


def test_audit_items_are_mixed_in_at_the_rate_from_the_random_ranking(db, scripts, audited):
    first = top(db, scripts, audited, 2)
    assert (first.ids, first.audit) == (["i9", "i3"], [False, True])
    second = top(db, scripts, audited, 2)  # i7 is the next random row, and margin's next after i8
    assert (second.ids, second.audit) == (["i8", "i7"], [False, True])
    assert {int(r) for r in db.smembers(PoolKeys(audited).audit)} == {3, 7}
    assert db.hget(PoolKeys(audited).meta, "audit_served") == b"4"


def test_the_count_of_audit_items_is_a_running_credit(db, scripts, audited):
    # floor((s + 1) / 2) - floor(s / 2): none, one, none, one...
    answers = [top(db, scripts, audited, 1) for _ in range(4)]
    assert [a.audit for a in answers] == [[False], [True], [False], [True]]
    assert [a.ids for a in answers] == [["i9"], ["i3"], ["i8"], ["i7"]]


def test_a_poll_draws_no_audit_items_and_counts_no_slot(db, scripts, audited):
    poll = read_top(db, scripts, audited, 2, None, audit=False)
    assert (poll.ids, poll.audit) == (["i9", "i8"], [False, False])
    assert not db.exists(PoolKeys(audited).audit)
    assert db.hget(PoolKeys(audited).meta, "audit_served") is None


def test_without_an_audit_rate_no_item_is_an_audit_item(db, scripts, ranked):
    answer = top(db, scripts, ranked, 4)
    assert answer.audit == [False] * 4 and not db.exists(PoolKeys(ranked).audit)


def test_an_audit_item_whose_lease_ended_comes_back_still_marked(db, pools, scripts, audited):
    assert top(db, scripts, audited, 2).ids == ["i9", "i3"]
    pools.release(audited, ["i3"])
    pools.teach(audited, ["i9", "i8", "i7", "i6", "i5", "i4"], ["a"] * 6)
    again = top(db, scripts, audited, 1)  # no audit slot due: the returned i3 is the best left
    assert (again.ids, again.audit) == (["i3"], [True])


def test_without_a_lease_the_same_audit_item_stays_first_in_line(db, scripts, audited):
    first, second = top(db, scripts, audited, 2, lease_ms=0), top(db, scripts, audited, 2, lease_ms=0)
    assert (first.ids, first.audit) == (second.ids, second.audit) == (["i9", "i3"], [False, True])
    assert not db.exists(PoolKeys(audited).leases)
