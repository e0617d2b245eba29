"""Reads the top of a precomputed ranking in one atomic script call."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from sieve.core import labels as label_values
from sieve.core.errors import Conflict
from sieve.core.selection import ALL_STRATEGIES
from sieve.storage.keys import PoolKeys
from sieve.storage.replies import int_or_none, pool_not_found, stop_answer, text
from sieve.storage.scripts import Scripts

MAX_SCAN = 200_000
"""Most ranking positions one query walks; bounds the script's time whatever the pool's history."""


@dataclass(frozen=True)
class Ranking:
    """The head of a ranking plus the versions it was built from."""

    strategy: str
    ready: bool
    unranked: bool
    """The pool has a ranking, but not for this strategy: it must be asked for (PoolStore.want)."""
    cold_start: bool
    ranked_version: int | None
    ranked_labels_version: int | None
    labels_version: int
    version: int
    model_version: int | None
    model_classes: list
    lease_expires_ms: int | None
    """When the leases on the returned items end (Redis clock, ms since the epoch); None without lease."""
    ids: list[str]
    audit: list[bool]
    """Per id: served as an audit item (drawn uniformly at random; its label goes to the evaluation split)."""
    scores: np.ndarray
    probabilities: np.ndarray | None
    """One row per id, one column per model class; None in cold start."""
    stop: dict
    """Whether to stop labeling, and why (see core.stopping)."""

    @property
    def fresh(self) -> bool:
        """True when the ranking reflects every label taught so far."""
        return self.ready and self.ranked_labels_version >= self.labels_version


def read_top(
    redis,
    scripts: Scripts,
    pool_id: str,
    k: int,
    strategy: str | None,
    lease_ms: int = 0,
    annotator: str = "",
    audit: bool = True,
) -> Ranking:
    """The head of the ranking; with lease_ms > 0 the returned items are leased to the caller. With
    `audit` (not for a poll), a pool's audit rate mixes audit items in."""
    keys = PoolKeys(pool_id)
    reply = scripts.query(
        keys=[
            keys.meta,
            keys.labeled,
            keys.ids,
            keys.proba,
            keys.cursor,
            keys.leases,
            keys.lease_owners,
            keys.returned,
            keys.held,
            keys.audit,
            *keys.ranking_keys(),
        ],
        args=[k, strategy or "", MAX_SCAN, lease_ms, annotator, "1" if audit else "0", *ALL_STRATEGIES],
        client=redis,
    )
    status = text(reply[0])
    if status == "gone":
        raise pool_not_found(pool_id)
    if status == "spent":
        raise Conflict(
            f"this pool's label budget is spent ({text(reply[1])} labels of {text(reply[2])}) and "
            "it enforces it: no more items to label",
            field="stopping.budget",
        )
    (
        name,
        cold,
        ranked_version,
        ranked_labels_version,
        labels_version,
        version,
        model_version,
        classes_json,
        stop,
        n_labeled,
        budget,
    ) = (text(x) for x in reply[1:12])
    expires, scores, probas, flags, ids = (
        (text(reply[12]), reply[13], reply[14], text(reply[15]), reply[16:])
        if status == "ok"
        else ("", b"", b"", "", [])
    )
    classes = label_values.decode_all(json.loads(classes_json)) if classes_json else []
    return Ranking(
        strategy=name,
        ready=status == "ok",
        unranked=status == "unranked",
        cold_start=cold != "0",
        ranked_version=int_or_none(ranked_version),
        ranked_labels_version=int_or_none(ranked_labels_version),
        labels_version=int(labels_version),
        version=int(version),
        model_version=int_or_none(model_version),
        model_classes=classes,
        lease_expires_ms=int_or_none(expires),
        ids=[text(i) for i in ids],
        audit=[flag == "1" for flag in flags],
        scores=np.frombuffer(scores, dtype="<f8"),
        probabilities=np.frombuffer(probas, dtype="<f4").reshape(len(ids), len(classes)) if probas else None,
        stop=stop_answer(stop, int(n_labeled), int_or_none(budget)),
    )


@dataclass(frozen=True)
class FullRanking:
    """A whole ranking of the pool's strategy as one refresh published it, without the rows labeled since."""

    strategy: str
    ranked_version: int | None
    cold_start: bool
    model_classes: list
    ids: list[str]
    scores: np.ndarray
    probabilities: np.ndarray | None


def read_all(redis, pool_id: str) -> FullRanking:
    """Every still unlabeled row of the pool's current ranking, most informative first, read at one instant."""
    keys = PoolKeys(pool_id)

    def read(pipe):
        # Immediate reads under WATCH on meta: a refresh or teach in between makes the transaction retry.
        strategy, cold, ranked_version, classes_json, ranked = pipe.hmget(
            keys.meta, ["strategy", "cold_start", "ranked_version", "model_classes", "ranked_strategies"]
        )
        if strategy is None:
            raise pool_not_found(pool_id)
        cold = text(cold) != "0"  # no refresh yet counts as cold
        # Rankings stored before each strategy had its own cold-start order: random served them all.
        served = "random" if cold and ranked is None else text(strategy)
        found = (
            served,
            cold,
            int_or_none(ranked_version),
            classes_json,
            pipe.get(keys.rank(served)),
            pipe.get(keys.score(served)),
            None if cold else pipe.get(keys.proba),
            pipe.get(keys.labeled),
        )
        pipe.multi()
        return found

    served, cold, ranked_version, classes_json, order, scores, proba, labeled = redis.transaction(
        read, keys.meta, value_from_callable=True
    )
    classes = label_values.decode_all(json.loads(classes_json)) if classes_json and not cold else []
    rows = np.frombuffer(order or b"", dtype="<u4").astype(np.int64)
    by_row = np.frombuffer(scores or b"", dtype="<f8")  # every row's score, indexed by row
    values = by_row[rows] if len(rows) else np.zeros(0)
    bits = np.unpackbits(np.frombuffer(labeled or b"", dtype=np.uint8))  # bit `row` of a Redis bitmap
    keep = np.ones(len(rows), dtype=bool)
    inside = rows < len(bits)
    keep[inside] = bits[rows[inside]] == 0
    rows, values = rows[keep], values[keep]
    probabilities = None
    if proba and classes:
        probabilities = np.frombuffer(proba, dtype="<f4").reshape(-1, len(classes))[rows]
    ids = [text(i) for i in redis.hmget(keys.ids, rows.tolist())] if len(rows) else []
    return FullRanking(
        strategy=served,
        ranked_version=ranked_version,
        cold_start=cold,
        model_classes=classes,
        ids=ids,
        scores=values,
        probabilities=probabilities,
    )
