"""Removing labels: atomic, logged, versioned, and the items come back among the unlabeled."""

from __future__ import annotations

import numpy as np

from sieve.storage.keys import PoolKeys
from tests.helpers import items_of


def _pool(api):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, size=(10, 3)), rng.normal(2, 1, size=(10, 3))])
    return api.create_pool(
        items=items_of(X),
        random_state=0,
        labels=[{"id": "i0", "label": "neg"}, {"id": "i1", "label": "neg"}, {"id": "i19", "label": "pos"}],
    )


def test_unlabel_removes_the_label_logs_it_and_the_item_is_ranked_again(api, redis):
    pool = _pool(api)
    api.wait_idle(pool)
    answer = api.post(f"/v1/pools/{pool}/unlabel", json={"ids": ["i1", "i19"]})
    assert answer.status_code == 202, answer.text
    assert answer.json()["removed"] == 2 and answer.json()["labels_version"] == 2
    status = api.status(pool)
    assert status["n_labeled"] == 1 and status["classes_seen"] == {"neg": 1}
    assert status["cold_start"] is True
    log = redis.xrange(PoolKeys(pool).log)
    assert log[-1][1][b"ids"] == b'["i1","i19"]' and log[-1][1][b"labels"] == b"[null,null]"
    api.wait_idle(pool)
    ranked = {item["id"] for item in api.query(pool, k=100, lease_seconds=0)["items"]}
    assert ranked == {f"i{i}" for i in range(1, 20)}


def test_unlabeling_what_has_no_label_changes_nothing(api):
    pool = _pool(api)
    before = api.status(pool)
    answer = api.post(f"/v1/pools/{pool}/unlabel", json={"ids": ["i5"]})
    assert answer.status_code == 202 and answer.json() == {"removed": 0, "labels_version": 1, "job_id": None}
    assert api.status(pool)["version"] == before["version"]


def test_unlabel_is_all_or_nothing_and_names_the_unknown_id(api):
    pool = _pool(api)
    answer = api.post(f"/v1/pools/{pool}/unlabel", json={"ids": ["i0", "nope"]})
    assert answer.status_code == 422 and answer.json()["field"] == "ids[1]"
    assert api.status(pool)["n_labeled"] == 3
    assert api.post("/v1/pools/0123456789abcdef/unlabel", json={"ids": ["i0"]}).status_code == 404
