"""Fitted models as HMAC-signed bytes: nothing is unpickled unless Sieve signed it."""
from __future__ import annotations

import hashlib
import hmac
import pickle

_DIGEST = hashlib.sha256
_MAC_BYTES = _DIGEST().digest_size


class UntrustedModel(Exception):
    """A stored model's signature does not match: it was not written by this deployment."""


def _mac(key: bytes, pool_id: str, model_version: int, payload: bytes) -> bytes:
    # The pool and version are signed too, so a valid blob cannot be replayed into another pool.
    context = f"{pool_id}:{model_version}:".encode()
    return hmac.new(key, context + payload, _DIGEST).digest()


def dump_model(model, key: bytes, pool_id: str, model_version: int) -> bytes:
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return _mac(key, pool_id, model_version, payload) + payload


def load_model(blob: bytes, key: bytes, pool_id: str, model_version: int):
    mac, payload = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, pool_id, model_version, payload)):
        raise UntrustedModel(f"the model of pool {pool_id} at version {model_version} has a bad signature")
    return pickle.loads(payload)
