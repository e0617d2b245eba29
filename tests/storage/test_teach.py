"""Scripts teach and unlabel: labels, their bitmap, class counts, the label log, versions and the eval split."""

from __future__ import annotations

import json

import pytest

from sieve.core.errors import Conflict, InvalidInput, NotFound
from sieve.storage import pool_store
from sieve.storage.keys import PoolKeys
from sieve.storage.pool_store import Idempotency
from tests.storage.support import config, features, item_ids, make_pool, meta_of, snapshot


def bits(db, keys: PoolKeys, n: int) -> list[int]:
    return [db.getbit(keys.labeled, r) for r in range(n)]


def log_entries(db, keys: PoolKeys) -> list[dict]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in db.xrange(keys.log)]


def test_teach_records_labels_bits_counts_and_one_log_entry(db, pools):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    db.delete(keys.pending)
    change = pools.teach(pool_id, ["i1", "i3", "i4"], ["a", "b", "a"], source="test")
    assert (change.labels_version, change.version, change.job_id) == (1, 2, f"refresh-{pool_id}-2")
    assert db.hgetall(keys.labels) == {b"1": b'"a"', b"3": b'"b"', b"4": b'"a"'}
    assert bits(db, keys, 6) == [0, 1, 0, 1, 1, 0]
    assert db.hgetall(keys.class_counts) == {b'"a"': b"2", b'"b"': b"1"}
    meta = meta_of(pools, pool_id)
    assert (meta["n_labeled"], meta["n_eval"], meta["label_kind"]) == ("3", "0", "str")
    assert (meta["labels_version"], meta["version"]) == ("1", "2")
    assert log_entries(db, keys) == [
        {"labels_version": "1", "source": "test", "ids": '["i1","i3","i4"]', "labels": '["a","b","a"]'}
    ]
    assert db.get(keys.pending) == change.job_id.encode()


def test_integer_and_string_labels_stay_apart(db, pools):
    pool_id = make_pool(pools)
    pools.teach(pool_id, ["i0"], [1])
    assert db.hget(PoolKeys(pool_id).labels, 0) == b"1"
    with pytest.raises(InvalidInput, match="integers"):
        pools.teach(pool_id, ["i1"], ["1"])


def test_relabeling_moves_the_class_counts(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a", "i1": "a"})
    keys = PoolKeys(pool_id)
    pools.teach(pool_id, ["i0"], ["b"])
    assert db.hgetall(keys.class_counts) == {b'"a"': b"1", b'"b"': b"1"}
    pools.teach(pool_id, ["i1"], ["b"])
    assert db.hgetall(keys.class_counts) == {b'"b"': b"2"}
    assert meta_of(pools, pool_id)["n_labeled"] == "2"
    # The same label again still counts as a teach call.
    change = pools.teach(pool_id, ["i1"], ["b"])
    assert db.hgetall(keys.class_counts) == {b'"b"': b"2"}
    assert change.labels_version == 4


@pytest.mark.parametrize(
    ("ids", "labels", "error", "field"),
    [
        (["i0", "nope", "i1"], ["a", "a", "a"], InvalidInput, "labels[1].id"),
        (["i0", "i1"], [1, 2], InvalidInput, "labels"),
    ],
)
def test_a_refused_teach_changes_nothing(db, pools, ids, labels, error, field):
    pool_id = make_pool(pools, labels={"i5": "a"})
    before = snapshot(db)
    with pytest.raises(error) as refused:
        pools.teach(pool_id, ids, labels)
    assert refused.value.field == field
    assert snapshot(db) == before


def test_a_closed_list_of_classes_refuses_any_other_label(db, pools):
    pool_id = make_pool(pools, classes=["a", "b"])
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        pools.teach(pool_id, ["i0", "i1"], ["a", "c"])
    assert refused.value.field == "labels[1].label"
    assert snapshot(db) == before
    pools.teach(pool_id, ["i0", "i1"], ["a", "b"])


def test_a_pool_stored_before_allowed_labels_compares_its_classes(db, pools):
    pool_id = make_pool(pools, classes=[1, 2])
    db.hdel(PoolKeys(pool_id).meta, "allowed_labels")
    with pytest.raises(InvalidInput, match="not one of the pool's classes"):
        pools.teach(pool_id, ["i0"], [3])
    pools.teach(pool_id, ["i0"], [2])


def test_past_the_most_classes_is_refused(db, pools, monkeypatch):
    monkeypatch.setattr(pool_store, "MAX_CLASSES", 2)
    pool_id = make_pool(pools, labels={"i0": "a", "i1": "b"})
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="at most 2 classes"):
        pools.teach(pool_id, ["i2", "i3"], ["a", "c"])
    assert snapshot(db) == before
    # Evaluation labels are no classes of the model.
    pools.teach(pool_id, ["i2"], ["c"], splits=["eval"])


def test_eval_labels_go_apart_and_bump_only_the_version(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    keys = PoolKeys(pool_id)
    change = pools.teach(pool_id, ["i1", "i2"], ["a", "b"], splits=["eval", "eval"])
    assert (change.labels_version, change.version) == (1, 3)
    assert db.hgetall(keys.eval) == {b"1": b'"a"', b"2": b'"b"'}
    assert db.hgetall(keys.labels) == {b"0": b'"a"'}
    assert db.hgetall(keys.class_counts) == {b'"a"': b"1"}
    # Their bit is set, so no query hands them out.
    assert bits(db, keys, 4) == [1, 1, 1, 0]
    meta = meta_of(pools, pool_id)
    assert (meta["n_labeled"], meta["n_eval"]) == ("1", "2")
    assert log_entries(db, keys)[-1]["eval_ids"] == '["i1","i2"]'


def test_an_item_never_changes_split(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    pools.teach(pool_id, ["i1"], ["a"], splits=["eval"])
    before = snapshot(db)
    with pytest.raises(Conflict) as refused:
        pools.teach(pool_id, ["i2", "i1"], ["a", "a"])
    assert refused.value.field == "labels[1].split"
    with pytest.raises(Conflict):
        pools.teach(pool_id, ["i0"], ["a"], splits=["eval"])
    assert snapshot(db) == before


def test_an_audit_item_taught_without_a_split_goes_to_eval_unless_told_train(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    keys = PoolKeys(pool_id)
    db.sadd(keys.audit, 1, 2)  # rows a query served as audit items
    pools.teach(pool_id, ["i1", "i2", "i3"], ["a", "b", "b"], splits=[None, "train", None])
    assert db.hgetall(keys.eval) == {b"1": b'"a"'}
    assert db.hgetall(keys.labels) == {b"0": b'"a"', b"2": b'"b"', b"3": b'"b"'}
    pools.teach(pool_id, ["i1", "i4"], ["b", "a"], splits=[None, "eval"])  # a relabel counts once
    meta = meta_of(pools, pool_id)
    assert (meta["n_labeled"], meta["n_eval"], meta["n_audit_eval"]) == ("3", "2", "1")


def test_a_mixed_call_bumps_labels_version_once(db, pools):
    pool_id = make_pool(pools)
    change = pools.teach(pool_id, ["i0", "i1"], ["a", "b"], splits=["train", "eval"])
    assert (change.labels_version, change.version) == (1, 2)


def test_teaching_ends_the_items_leases_and_their_return(db, pools):
    pool_id = make_pool(pools)
    keys = PoolKeys(pool_id)
    db.zadd(keys.leases, {"1": 10**13, "2": 10**13})
    db.hset(keys.lease_owners, mapping={"1": "ann", "2": ""})
    db.zadd(keys.held, {"ann\x001": 0})
    db.sadd(keys.returned, "3")
    pools.teach(pool_id, ["i1", "i2", "i3"], ["a", "a", "a"])
    assert not db.exists(keys.leases, keys.lease_owners, keys.held, keys.returned)


def test_a_replayed_teach_answers_the_first_change_and_writes_nothing(db, pools):
    pool_id = make_pool(pools)
    idem = Idempotency("k", "digest")
    first = pools.teach(pool_id, ["i0"], ["a"], idem=idem)
    before = snapshot(db)
    assert pools.teach(pool_id, ["i0"], ["a"], idem=idem) == first
    assert snapshot(db) == before
    with pytest.raises(InvalidInput) as refused:
        pools.teach(pool_id, ["i1"], ["a"], idem=Idempotency("k", "other"))
    assert refused.value.field == "Idempotency-Key"


def test_the_first_labels_of_a_create_are_refused_once_the_pool_has_a_log(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    outcome = pools._teach_call(PoolKeys(pool_id), ["i1"], ["b"], "str", "create", first_labels=True)
    assert outcome == [b"conflict"]


def test_a_deleted_pool_takes_no_labels(db, pools):
    pool_id = make_pool(pools)
    pools.delete(pool_id)
    with pytest.raises(NotFound):
        pools.teach(pool_id, ["i0"], ["a"])
    with pytest.raises(NotFound):
        pools.unlabel(pool_id, ["i0"])
    assert db.dbsize() == 0


def test_unlabel_removes_labels_and_bits_and_logs_nulls(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a", "i1": "b", "i2": "a"})
    keys = PoolKeys(pool_id)
    db.delete(keys.pending)
    removed, change = pools.unlabel(pool_id, ["i0", "i1", "i4"], source="test")
    assert removed == 2
    assert (change.labels_version, change.version, change.job_id) == (2, 3, f"refresh-{pool_id}-3")
    assert db.hgetall(keys.labels) == {b"2": b'"a"'}
    assert bits(db, keys, 6) == [0, 0, 1, 0, 0, 0]
    assert db.hgetall(keys.class_counts) == {b'"a"': b"1"}
    assert meta_of(pools, pool_id)["n_labeled"] == "1"
    assert log_entries(db, keys)[-1] == {
        "labels_version": "2",
        "source": "test",
        "ids": '["i0","i1"]',
        "labels": "[null,null]",
    }


def test_unlabeling_what_has_no_label_changes_nothing(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    pools.teach(pool_id, ["i1"], ["a"], splits=["eval"])
    before = snapshot(db)
    removed, change = pools.unlabel(pool_id, ["i1", "i2"])
    assert (removed, change.labels_version, change.version, change.job_id) == (0, 1, 3, None)
    assert snapshot(db) == before


def test_unlabel_naming_an_unknown_id_changes_nothing(db, pools):
    pool_id = make_pool(pools, labels={"i0": "a"})
    before = snapshot(db)
    with pytest.raises(InvalidInput) as refused:
        pools.unlabel(pool_id, ["i0", "zz"])
    assert refused.value.field == "ids[1]"
    assert snapshot(db) == before


def test_labels_can_be_taught_again_after_unlabel(db, pools):
    pool_id, _ = pools.create(config(), item_ids(2), features(2), [], [])
    pools.teach(pool_id, ["i0"], ["a"])
    pools.unlabel(pool_id, ["i0"])
    pools.teach(pool_id, ["i0"], ["b"])
    assert db.hgetall(PoolKeys(pool_id).class_counts) == {b'"b"': b"1"}
    assert json.loads(db.hget(PoolKeys(pool_id).labels, 0)) == "b"
