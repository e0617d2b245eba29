"""Query by committee: bagged copies of the pool's model vote on every unlabeled row."""

from __future__ import annotations

import numpy as np
from scipy.special import entr, rel_entr

from sieve.core.fitting import fit, predict_proba
from sieve.core.strategies import validate_proba

COMMITTEE_SIZE = 5
"""Members of the committee; Settles (2009) reports that even small committees (2-3) work well."""


def _members(member_proba) -> np.ndarray:
    arr = np.asarray(member_proba)
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise ValueError("committee probabilities must be a (members, items, classes) array")
    validate_proba(arr.reshape(-1, arr.shape[2]))
    return arr.astype(np.float64, copy=False)


def vote_entropy(member_proba) -> np.ndarray:
    """-sum_c V(c)/C ln V(c)/C, V(c) = members whose top class is c (Dagan & Engelson 1995).

    The unnormalised form of Settles' survey (2009); Dagan & Engelson divide by
    ln min(K, C), a constant that does not change the order.
    """
    p = _members(member_proba)
    n_members, n_items, n_classes = p.shape
    # Each member votes for its top class; np.argmax breaks ties towards the first class.
    votes = (p.argmax(axis=2)[..., None] == np.arange(n_classes)).sum(axis=0)
    return entr(votes / n_members).sum(axis=1)


def consensus_kl(member_proba) -> np.ndarray:
    """(1/C) sum_m KL(P_m || P_consensus), P_consensus the members' mean (McCallum & Nigam 1998)."""
    p = _members(member_proba)
    consensus = p.mean(axis=0)
    # rel_entr(0, q) = 0; where P_m > 0 the consensus is >= P_m / C > 0, so every term is finite.
    return np.maximum(rel_entr(p, consensus[None]).sum(axis=2).mean(axis=0), 0.0)


def committee_proba(
    features: np.ndarray,
    labeled: np.ndarray,
    labels: np.ndarray,
    rows: np.ndarray,
    spec: dict,
    rng: np.random.Generator,
    size: int = COMMITTEE_SIZE,
) -> np.ndarray:
    """(size, len(rows), classes) probabilities of `size` models, each fitted on a bootstrap
    resample of the labeled rows (query by bagging, Abe & Mamitsuka 1998).

    Columns follow np.unique(labels). A resample may miss a class: its member gives that class
    probability 0; a resample holding one class alone cannot be fitted and votes for it with
    certainty, as a model that has only seen that class would.
    """
    if size < 1:
        raise ValueError(f"a committee needs at least one member, got {size}")
    labeled = np.asarray(labeled, dtype=np.int64)
    labels = np.asarray(labels)
    if len(labeled) != len(labels) or len(labeled) == 0:
        raise ValueError("query by committee needs labeled rows, one label each")
    classes = np.unique(labels)
    column = {c: i for i, c in enumerate(classes.tolist())}
    out = np.zeros((size, len(rows), len(classes)))
    for m in range(size):
        sample = rng.integers(0, len(labeled), len(labeled))
        seen = np.unique(labels[sample]).tolist()
        if len(seen) == 1:
            out[m, :, column[seen[0]]] = 1.0
            continue
        model = fit(features, labeled[sample], labels[sample], spec, random_state=int(rng.integers(2**31)))
        cols = [column[c] for c in model.classes_.tolist()]
        out[m][:, cols] = predict_proba(model, features[rows])
        # GaussianNB on thousands of columns answers rows that miss 1 by more than the checks allow.
        out[m] /= out[m].sum(axis=1, keepdims=True)
    return out
