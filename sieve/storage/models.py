"""Fitted models as HMAC-signed bytes: nothing is unpickled unless Sieve signed it."""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle

_DIGEST = hashlib.sha256
_MAC_BYTES = _DIGEST().digest_size


class UntrustedModel(Exception):
    """A stored model's signature does not match: it was not written by this deployment."""


def _mac(key: bytes, pool_id: str, model_version: int, payload: bytes) -> bytes:
    # The pool and version are signed too, so a valid blob cannot be replayed into another pool.
    context = f"{pool_id}:{model_version}:".encode()
    return hmac.new(key, context + payload, _DIGEST).digest()


class ModelTooLarge(Exception):
    """A fitted model would make a stored blob bigger than the deployment allows."""


class _Bounded(io.BytesIO):
    """Pickle's output, refused as soon as it outgrows the limit (the model is never held twice)."""

    def __init__(self, max_bytes: int):
        super().__init__()
        self.max_bytes = max_bytes

    def write(self, data) -> int:
        if _MAC_BYTES + self.tell() + memoryview(data).nbytes > self.max_bytes:
            raise ModelTooLarge(
                f"the fitted model takes more than {self.max_bytes / 2**20:g} MB stored, the most SIEVE_MAX_MODEL_MB "
                "allows (every /predict loads it): choose a smaller model (for a forest, fewer trees or a "
                "max_depth or min_samples_leaf) or raise SIEVE_MAX_MODEL_MB"
            )
        return super().write(data)


def dump_model(model, key: bytes, pool_id: str, model_version: int, max_bytes: int | None = None) -> bytes:
    """The signed blob of a model; ModelTooLarge if it would exceed max_bytes."""
    out = _Bounded(max_bytes if max_bytes is not None else float("inf"))
    pickle.dump(model, out, protocol=pickle.HIGHEST_PROTOCOL)
    payload = out.getvalue()
    return _mac(key, pool_id, model_version, payload) + payload


def load_model(blob: bytes, key: bytes, pool_id: str, model_version: int):
    mac, payload = blob[:_MAC_BYTES], blob[_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, pool_id, model_version, payload)):
        raise UntrustedModel(f"the model of pool {pool_id} at version {model_version} has a bad signature")
    return pickle.loads(payload)
