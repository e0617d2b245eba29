"""Text pools: the featurizer that turns text into fixed-width sparse float32 rows, and its JSON spec."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from sieve.core.errors import InvalidInput
from sieve.limits import MAX_TEXT_FEATURES

FEATURIZER_TYPES = ("hashing",)
DEFAULT_FEATURIZER = {"type": "hashing", "n_features": 1024, "ngram_max": 1, "tfidf": True}
MAX_NGRAM = 3


def _integer(spec: dict, name: str, low: int, high: int) -> int:
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}", field=f"featurizer.{name}")
    return value


def normalize_featurizer(spec: dict | None) -> dict:
    """A client's featurizer spec with every default filled in; InvalidInput names the field at fault."""
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        raise InvalidInput("featurizer must be an object", field="featurizer")
    unknown = sorted(set(spec) - set(DEFAULT_FEATURIZER))
    if unknown:
        raise InvalidInput(
            f"unknown featurizer key {unknown[0]!r}; valid keys: {', '.join(DEFAULT_FEATURIZER)}",
            field=f"featurizer.{unknown[0]}",
        )
    spec = {**DEFAULT_FEATURIZER, **spec}
    if spec["type"] not in FEATURIZER_TYPES:
        raise InvalidInput(
            f"unknown featurizer type {spec['type']!r}; valid: {', '.join(FEATURIZER_TYPES)}", field="featurizer.type"
        )
    _integer(spec, "n_features", 2, MAX_TEXT_FEATURES)
    _integer(spec, "ngram_max", 1, MAX_NGRAM)
    if not isinstance(spec["tfidf"], bool):
        raise InvalidInput("tfidf must be true or false", field="featurizer.tfidf")
    return spec


def featurize(texts: list[str], spec: dict) -> sparse.csr_matrix:
    """Sublinear, l2-normalized term frequencies hashed into spec's n_features columns, as a float32 CSR
    matrix: its size follows the text, never texts x n_features.

    Hashing needs no vocabulary, so the same text always gives the same row, in any process and at any
    time: the API featurizes at ingestion and every stored row stays valid. Inverse document
    frequencies depend on the whole pool, so they are learned by the model (see core.training).
    """
    vectorizer = HashingVectorizer(
        n_features=spec["n_features"],
        ngram_range=(1, spec["ngram_max"]),
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    counts = vectorizer.transform(texts)
    np.log(counts.data, out=counts.data)
    counts.data += 1.0  # sublinear tf: 1 + log(count)
    rows = normalize(counts).astype(np.float32, copy=False).tocsr()
    rows.sort_indices()
    return rows
