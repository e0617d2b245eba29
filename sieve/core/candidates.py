"""What a query strategy may look at when it scores rows or picks a batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Candidates:
    """What a strategy may look at when it picks a batch.

    `proba` holds the current model's probabilities for every row of `features` (None in a cold
    start, when fewer than two classes are labeled and there is no model). `labels` are the labels
    of the `labeled` rows, in the same order; `spec` is the pool's model spec (query by committee
    builds its members from it).
    """

    features: np.ndarray | sparse.csr_matrix
    unlabeled: np.ndarray
    labeled: np.ndarray
    labels: np.ndarray
    proba: np.ndarray | None
    model: object | None
    spec: dict
    rng: np.random.Generator

    @property
    def cold_start(self) -> bool:
        return self.proba is None
