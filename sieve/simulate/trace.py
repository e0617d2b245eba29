"""What one run of the loop leaves behind: per round, the labels spent, test accuracy and stop-set kappa,
and with audit items the accuracy estimates a pool would report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sieve.core.stopping import cohen_kappa


@dataclass
class Trace:
    labels: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    kappas: list[float | None] = field(default_factory=list)
    picks: list[list[int]] = field(default_factory=list)
    spent: list[int] = field(default_factory=list)
    """Labels spent at each round, audit items included (`labels` counts training labels only)."""
    estimates: list[dict | None] = field(default_factory=list)
    """The estimate from the audit items at each round (core/estimate.py); None before the first."""
    cross_validated: list[float | None] = field(default_factory=list)
    """The cross-validated accuracy on the training labels at each round (biased); None without one."""
    _previous: np.ndarray | None = field(default=None, repr=False)

    def record(
        self,
        n_labels: int,
        accuracy: float,
        stop_predictions: np.ndarray,
        spent: int | None = None,
        estimate: dict | None = None,
        cross_validated: float | None = None,
    ) -> None:
        """One model's round; its kappa compares its stop-set predictions with the previous model's."""
        self.labels.append(int(n_labels))
        self.spent.append(int(n_labels if spent is None else spent))
        self.estimates.append(estimate)
        self.cross_validated.append(cross_validated)
        self.accuracy.append(float(accuracy))
        self.kappas.append(None if self._previous is None else cohen_kappa(self._previous, stop_predictions))
        self._previous = np.asarray(stop_predictions)

    def picked(self, rows) -> None:
        """The pool rows the strategy chose after the last recorded round, in the order given."""
        self.picks.append([int(r) for r in rows])


def batch_size_now(n_labels: int, n_unlabeled: int, batch_size: int, budget: int) -> int:
    """How many rows the next round labels: a full batch, or what is left of the budget or the pool."""
    return max(0, min(batch_size, budget - n_labels, n_unlabeled))
