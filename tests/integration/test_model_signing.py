"""Models in Redis are signed: bytes Sieve did not sign are never unpickled."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sieve.storage.keys import PoolKeys
from sieve.storage.models import UntrustedModel, dump_model, load_model
from tests.helpers import ApiClient, items_of


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_model_signed_with_another_key_is_refused_before_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    blob = dump_model(_Exploit(str(marker)), b"another-key-0123456789", "p1", 3)
    with pytest.raises(UntrustedModel):
        load_model(blob, b"the-real-key-0123456789", "p1", 3)
    assert not marker.exists()


def test_a_signed_model_cannot_be_replayed_into_another_pool_or_version():
    blob = dump_model({"weights": [1, 2]}, b"k" * 32, "p1", 3)
    assert load_model(blob, b"k" * 32, "p1", 3) == {"weights": [1, 2]}
    with pytest.raises(UntrustedModel):
        load_model(blob, b"k" * 32, "p2", 3)
    with pytest.raises(UntrustedModel):
        load_model(blob, b"k" * 32, "p1", 4)


def test_predict_refuses_a_tampered_model_in_redis_without_running_it(live_url, redis, tmp_path):
    api = ApiClient(live_url)
    X = np.vstack([np.zeros((5, 2)), np.ones((5, 2))])
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "a"}, {"id": "i9", "label": "b"}])
    api.wait_idle(pool)
    marker = tmp_path / "pwned"
    key = PoolKeys(pool).model
    signed = redis.get(key)
    redis.set(key, signed[:32] + pickle.dumps(_Exploit(str(marker))))
    answer = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["i1"]})
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "Traceback" not in answer.text and answer.json()["request_id"]
    assert not marker.exists()
