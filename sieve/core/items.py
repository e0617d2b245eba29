"""A batch of items on its way into a pool: feature rows, or texts for a text pool's featurizer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ItemBatch:
    """Items of one call: ids with feature rows, or ids with texts."""

    ids: list[str]
    features: np.ndarray | None = None
    texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)
