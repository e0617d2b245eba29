"""Reads the top of a precomputed ranking in one atomic script call."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..core import labels as label_values
from ..core.errors import NotFound
from ..core.strategies import STRATEGIES
from .keys import PoolKeys
from .scripts import Scripts

MAX_SCAN = 200_000
"""Most ranking positions one query walks; bounds the script's time whatever the pool's history."""


@dataclass(frozen=True)
class RankedItem:
    id: str
    score: float
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Ranking:
    """The head of a ranking plus the versions it was built from."""

    strategy: str
    ready: bool
    cold_start: bool
    ranked_version: int | None
    ranked_labels_version: int | None
    labels_version: int
    version: int
    model_version: int | None
    model_classes: list
    items: list[RankedItem]

    @property
    def fresh(self) -> bool:
        """True when the ranking reflects every label taught so far."""
        return self.ready and self.ranked_labels_version >= self.labels_version


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int(text: str) -> int | None:
    return int(text) if text else None


def read_top(redis, scripts: Scripts, pool_id: str, k: int, strategy: str | None) -> Ranking:
    keys = PoolKeys(pool_id)
    reply = scripts.query(
        keys=[keys.meta, keys.labeled, keys.ids, keys.proba, keys.cursor, *keys.ranking_keys()],
        args=[k, strategy or "", MAX_SCAN, *STRATEGIES], client=redis)
    status = _text(reply[0])
    if status == "gone":
        raise NotFound(f"pool {pool_id} does not exist", field="pool_id")
    (name, cold, ranked_version, ranked_labels_version, labels_version, version, model_version,
     classes_json) = (_text(x) for x in reply[1:9])
    items = []
    body = reply[9:]
    for i in range(0, len(body), 3):
        item_id, score, proba = body[i:i + 3]
        items.append(RankedItem(
            id=_text(item_id),
            score=float(np.frombuffer(score, dtype="<f8")[0]),
            probabilities=np.frombuffer(proba, dtype="<f4") if proba else None))
    return Ranking(
        strategy=name, ready=status == "ok", cold_start=cold != "0",
        ranked_version=_int(ranked_version), ranked_labels_version=_int(ranked_labels_version),
        labels_version=int(labels_version), version=int(version), model_version=_int(model_version),
        model_classes=label_values.decode_all(json.loads(classes_json)) if classes_json else [],
        items=items)
