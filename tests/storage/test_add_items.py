"""Script add_items (through PoolStore.add_items): rows appended by chunk, and every refusal all or nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from sieve.core.errors import Conflict, InvalidInput, NotFound
from sieve.storage import features as feature_storage
from sieve.storage import pool_store
from sieve.storage.features import (
    COUNT,
    DTYPE,
    INDEX,
    read_rows,
    read_selected_rows,
    read_selected_sparse_rows,
    read_sparse_rows,
)
from sieve.storage.keys import PoolKeys
from sieve.storage.pool_store import Idempotency, NewLabels
from tests.storage.support import config, features, item_ids, make_pool, meta_of, snapshot


def test_items_are_appended_with_their_rows_and_the_version_moves(db, pools):
    pool_id = make_pool(pools, n=3)
    keys = PoolKeys(pool_id)
    db.delete(keys.pending)  # as a refresh's claim would
    change = pools.add_items(pool_id, item_ids(2, start=3), features(2, start=3))
    assert (change.version, change.n_items, change.job_id) == (2, 5, f"refresh-{pool_id}-2")
    assert db.hgetall(keys.rows) == {f"i{r}".encode(): str(r).encode() for r in range(5)}
    assert db.hgetall(keys.ids) == {str(r).encode(): f"i{r}".encode() for r in range(5)}
    assert db.get(keys.chunk(0)) == features(5).astype(DTYPE).tobytes()
    meta = meta_of(pools, pool_id)
    assert (meta["n_items"], meta["dim"], meta["n_values"], meta["version"]) == ("5", "3", "15", "2")
    assert db.get(keys.pending) == change.job_id.encode()


def test_a_change_while_a_refresh_is_queued_asks_for_no_other(db, pools):
    pool_id = make_pool(pools, n=3)
    queued = db.get(PoolKeys(pool_id).pending)
    change = pools.add_items(pool_id, ["x"], features(1))
    assert change.job_id is None
    assert db.get(PoolKeys(pool_id).pending) == queued


def test_rows_are_split_over_chunks_of_the_pools_rows_per_chunk(db, pools, monkeypatch):
    monkeypatch.setattr(feature_storage, "ROWS_PER_CHUNK", 4)
    pool_id = make_pool(pools, n=3)
    assert meta_of(pools, pool_id)["chunk_rows"] == "4"
    pools.add_items(pool_id, item_ids(7, start=3), features(7, start=3))
    keys = PoolKeys(pool_id)
    rows = features(10).astype(DTYPE)
    assert [db.get(keys.chunk(c)) for c in range(3)] == [rows[0:4].tobytes(), rows[4:8].tobytes(), rows[8:].tobytes()]
    assert not db.exists(keys.chunk(3))
    np.testing.assert_array_equal(read_rows(db, keys, 0, 10, 3, 4), rows)


def test_a_pool_without_items_takes_the_dimension_of_its_first_rows(pools):
    pool_id, _ = pools.create(config(), [], None, [], [])
    pools.add_items(pool_id, ["a"], features(1, dim=5))
    meta = meta_of(pools, pool_id)
    assert (meta["dim"], meta["n_items"], meta["n_values"]) == ("5", "1", "5")


def test_duplicate_ids_are_refused_and_nothing_changes(db, pools):
    pool_id = make_pool(pools, n=3)
    before = snapshot(db)
    with pytest.raises(Conflict) as refused:
        pools.add_items(pool_id, ["new", "i1", "i2"], features(3))
    assert refused.value.field == "items[1].id"
    assert refused.value.message == "these ids are already in the pool: ['i1', 'i2']"
    assert snapshot(db) == before


def test_another_dimension_is_refused_and_nothing_changes(db, pools):
    pool_id = make_pool(pools, n=3, dim=3)
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="dimension 3"):
        pools.add_items(pool_id, ["new"], features(1, dim=4))
    assert snapshot(db) == before


def test_past_the_most_items_is_refused_and_nothing_changes(db, pools, monkeypatch):
    monkeypatch.setattr(pool_store, "MAX_POOL_ITEMS", 5)
    pool_id = make_pool(pools, n=3)
    pools.add_items(pool_id, ["a", "b"], features(2))
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="at most 5 items; this one has 5"):
        pools.add_items(pool_id, ["c"], features(1))
    assert snapshot(db) == before


def test_past_the_value_limit_is_refused_and_nothing_changes(db, pools):
    pools.max_pool_values = 12
    pool_id = make_pool(pools, n=3)
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="holds 9 and these items add 6"):
        pools.add_items(pool_id, ["a", "b"], features(2))
    assert snapshot(db) == before
    pools.add_items(pool_id, ["a"], features(1))
    assert meta_of(pools, pool_id)["n_values"] == "12"


def test_a_chunk_that_would_pass_the_string_limit_is_refused_and_nothing_changes(db, pools, monkeypatch):
    pool_id = make_pool(pools, n=3)
    monkeypatch.setattr(pool_store, "REDIS_MAX_STRING_BYTES", 3 * 3 * 4 + 12)
    pools.add_items(pool_id, ["a"], features(1))
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="feature storage is full"):
        pools.add_items(pool_id, ["b"], features(1))
    assert snapshot(db) == before


def test_a_call_that_counted_other_items_is_told_to_retry(db, pools):
    pool_id = make_pool(pools, n=3)
    keys = PoolKeys(pool_id)
    before = snapshot(db)
    # As if another addition got in between this caller's read of n_items and its script.
    outcome = pools._add_items_call(keys, 2, ["x"], features(1), 65536, False)
    assert [x.decode() for x in outcome] == ["retry", "3"]
    # Rows cut by other rows per chunk than the pool's would be read back wrong.
    outcome = pools._add_items_call(keys, 3, ["x"], features(1), 1024, False)
    assert [x.decode() for x in outcome] == ["retry", "3"]
    assert snapshot(db) == before


def test_a_pool_stored_before_rows_per_chunk_was_kept_is_read_as_65536_rows(db, pools):
    pool_id = make_pool(pools, n=3)
    keys = PoolKeys(pool_id)
    db.hdel(keys.meta, "chunk_rows", "n_values")
    outcome = pools._add_items_call(keys, 3, ["x"], features(1), 1024, False)
    assert outcome[0] == b"retry"
    change = pools.add_items(pool_id, ["x"], features(1))
    meta = meta_of(pools, pool_id)
    assert (change.n_items, meta["chunk_rows"], meta["n_values"]) == (4, "65536", "12")


def test_a_replayed_addition_answers_the_first_change_and_writes_nothing(db, pools):
    pool_id = make_pool(pools, n=3)
    idem = Idempotency("k", "digest")
    first = pools.add_items(pool_id, ["a"], features(1), idem=idem)
    before = snapshot(db)
    assert pools.add_items(pool_id, ["a"], features(1), idem=idem) == first
    assert snapshot(db) == before
    with pytest.raises(InvalidInput) as refused:
        pools.add_items(pool_id, ["b"], features(1), idem=Idempotency("k", "other"))
    assert refused.value.field == "Idempotency-Key"
    assert snapshot(db) == before


def test_old_idempotency_records_are_dropped_as_new_ones_arrive(db, pools):
    pool_id = make_pool(pools, n=3)
    keys = PoolKeys(pool_id)
    pools.add_items(pool_id, ["a"], features(1), idem=Idempotency("old", "h"))
    db.zadd(keys.idempotency_at, {"old": 1})  # stored long ago
    pools.add_items(pool_id, ["b"], features(1), idem=Idempotency("new", "h"))
    assert db.hkeys(keys.idempotency) == [b"new"]
    assert db.zrange(keys.idempotency_at, 0, -1) == [b"new"]


def test_a_deleted_pool_takes_no_items(db, pools):
    pool_id = make_pool(pools, n=3)
    pools.delete(pool_id)
    with pytest.raises(NotFound):
        pools.add_items(pool_id, ["a"], features(1))
    assert db.dbsize() == 0


def test_a_text_pool_stores_sparse_rows(db, pools):
    pool_id, _ = pools.create(config(featurizer={"kind": "hashing"}), [], None, [], [])
    rows = sparse.csr_matrix(np.array([[0, 1.5, 0, 0], [0, 0, 0, 0], [2.0, 0, 0, 0.5]], dtype=np.float32))
    change = pools.add_items(pool_id, ["a", "b", "c"], rows)
    assert change.n_items == 3
    counts, indices, values = (db.get(key) for key in PoolKeys(pool_id).sparse_chunk(0))
    assert np.frombuffer(counts, COUNT).tolist() == [1, 0, 2]
    assert np.frombuffer(indices, INDEX).tolist() == [1, 0, 3]
    assert np.frombuffer(values, DTYPE).tolist() == [1.5, 2.0, 0.5]
    meta = meta_of(pools, pool_id)
    assert (meta["layout"], meta["dim"], meta["n_values"]) == ("csr", "4", "3")
    assert not db.exists(PoolKeys(pool_id).chunk(0))


def test_sparse_rows_split_over_chunks_read_back_whole_or_picked(db, pools, monkeypatch):
    monkeypatch.setattr(feature_storage, "ROWS_PER_CHUNK", 2)
    pool_id, _ = pools.create(config(featurizer={"kind": "hashing"}), [], None, [], [])
    dense = np.array([[0, 1, 0], [0, 0, 0], [2, 0, 3], [0, 0, 4], [5, 6, 0]], dtype=np.float32)
    pools.add_items(pool_id, item_ids(3), sparse.csr_matrix(dense[:3]))
    pools.add_items(pool_id, item_ids(2, start=3), sparse.csr_matrix(dense[3:]))
    keys = PoolKeys(pool_id)
    assert meta_of(pools, pool_id)["chunk_rows"] == "2"
    assert [np.frombuffer(db.get(keys.sparse_chunk(c)[0]), COUNT).tolist() for c in range(3)] == [[1, 0], [2, 1], [2]]
    np.testing.assert_array_equal(read_sparse_rows(db, keys, 0, 5, 3, 2).toarray(), dense)
    np.testing.assert_array_equal(read_sparse_rows(db, keys, 1, 4, 3, 2).toarray(), dense[1:4])
    np.testing.assert_array_equal(read_selected_sparse_rows(db, keys, [4, 1, 0], 3, 2).toarray(), dense[[4, 1, 0]])


def test_dense_rows_are_picked_across_chunks(db, pools, monkeypatch):
    monkeypatch.setattr(feature_storage, "ROWS_PER_CHUNK", 2)
    pool_id = make_pool(pools, n=5)
    rows = read_selected_rows(db, PoolKeys(pool_id), [4, 0, 3], 3, 2)
    np.testing.assert_array_equal(rows, features(5)[[4, 0, 3]])


# -- labels sent with the items --------------------------------------------------------------------------------


def test_labels_sent_with_items_are_taught_in_the_same_step(db, pools):
    pool_id = make_pool(pools, n=3, labels={"i0": "a"})
    labels = NewLabels(["x1", "x2"], ["b", "a"], ["train", "eval"])
    change = pools.add_items(pool_id, ["x0", "x1", "x2"], features(3, start=3), labels=labels)
    meta = meta_of(pools, pool_id)
    assert (change.n_items, meta["n_items"], meta["n_labeled"], meta["n_eval"]) == (6, "6", "2", "1")
    assert meta["labels_version"] == "2" and int(meta["version"]) == change.version + 1
    keys = PoolKeys(pool_id)
    assert db.hgetall(keys.class_counts) == {b'"a"': b"1", b'"b"': b"1"}
    assert db.hget(keys.eval, b"5") == b'"a"'


@pytest.mark.parametrize(
    "labels, error, field",
    [
        (NewLabels(["x0"], [1], ["train"]), InvalidInput, "labels"),  # the pool's labels are strings
        (NewLabels(["x0"], ["c"], ["train"]), InvalidInput, "labels[0].label"),  # not one of its classes
    ],
    ids=["kind", "class"],
)
def test_labels_the_pool_refuses_refuse_the_items_too(db, pools, labels, error, field):
    pool_id = make_pool(pools, n=3, labels={"i0": "a"}, classes=["a", "b"])
    before = snapshot(db)
    with pytest.raises(error) as refused:
        pools.add_items(pool_id, ["x0"], features(1, start=3), labels=labels)
    assert refused.value.field == field
    assert snapshot(db) == before


def test_labels_past_the_most_classes_refuse_the_items_too(db, pools, monkeypatch):
    monkeypatch.setattr(pool_store, "MAX_CLASSES", 2)
    pool_id = make_pool(pools, n=3, labels={"i0": "a", "i1": "b"})
    before = snapshot(db)
    with pytest.raises(InvalidInput, match="at most 2 classes"):
        pools.add_items(pool_id, ["x0", "x1"], features(2, start=3), labels=NewLabels(["x1"], ["c"], ["train"]))
    assert snapshot(db) == before


def test_refused_items_teach_none_of_their_labels(db, pools):
    # Every id is in the pool already: were the labels taught anyway, they would label those items.
    pool_id = make_pool(pools, n=3)
    before = snapshot(db)
    with pytest.raises(Conflict):
        pools.add_items(pool_id, ["i0", "i1"], features(2), labels=NewLabels(["i0"], ["a"], ["train"]))
    assert snapshot(db) == before


def test_a_replayed_addition_with_labels_teaches_them_once(db, pools):
    pool_id = make_pool(pools, n=3)
    idem = Idempotency("k", "digest")
    labels = NewLabels(["x0"], ["a"], ["train"])
    first = pools.add_items(pool_id, ["x0"], features(1, start=3), idem=idem, labels=labels)
    before = snapshot(db)
    assert pools.add_items(pool_id, ["x0"], features(1, start=3), idem=idem, labels=labels) == first
    assert snapshot(db) == before
    assert meta_of(pools, pool_id)["labels_version"] == "1"


def test_a_label_taught_between_the_checks_and_the_write_retries_the_call(db, pools, monkeypatch):
    pool_id = make_pool(pools, n=3, labels={"i0": "a"})
    check = pool_store.PoolStore._check_new_labels
    calls = []

    def check_then_teach(pipe, keys, labels):
        check(pipe, keys, labels)
        if not calls:  # another client teaches right after the first check: the transaction must not run
            pools.teach(pool_id, ["i1"], ["b"])
        calls.append(1)

    monkeypatch.setattr(pool_store.PoolStore, "_check_new_labels", staticmethod(check_then_teach))
    pools.add_items(pool_id, ["x0"], features(1, start=3), labels=NewLabels(["x0"], ["a"], ["train"]))
    assert len(calls) == 2
    meta = meta_of(pools, pool_id)
    assert (meta["n_items"], meta["n_labeled"], meta["labels_version"]) == ("4", "3", "3")


def test_a_lookup_names_the_ids_the_pool_holds_in_the_order_asked(pools):
    pool_id = make_pool(pools, n=4)
    assert pools.present_ids(pool_id, ["nope", "i3", "i2", "i0", "i9"]) == ["i3", "i2", "i0"]
    assert pools.present_ids(pool_id, ["x"]) == []
    with pytest.raises(NotFound):
        pools.present_ids("00ffffffffffffff", ["i0"])
