"""When to stop labeling: a label budget, a target metric, and stabilizing predictions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

STOP_SET_SIZE = 1000
"""Most unlabeled rows in a pool's stop set, on which consecutive models' predictions are compared."""


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two labelings of the same items: agreement beyond chance, in [-1, 1].

    Two labelings that agree everywhere have kappa 1, also when both use a single class (the chance
    agreement is then 1 as well, and 0/0 is taken as perfect agreement).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kappa needs two 1-D labelings of the same items")
    if a.size == 0:
        raise ValueError("kappa needs at least one item")
    classes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = codes[: a.size], codes[a.size :]
    observed = np.mean(ca == cb)
    expected = (
        float(np.dot(np.bincount(ca, minlength=len(classes)), np.bincount(cb, minlength=len(classes)))) / a.size**2
    )
    if expected == 1.0:
        return 1.0
    return float((observed - expected) / (1.0 - expected))


@dataclass(frozen=True)
class StoppingPolicy:
    """A pool's stopping rules; any that is met recommends stopping.

    budget: stop once this many labels are spent.
    target: stop once `target_metric` reaches `target` on the evaluation set.
    plateau: stop once consecutive models' predictions on a fixed stop set agree with Cohen's kappa
    above `kappa_threshold` for `window` rounds in a row (Bloodgood and Vijay-Shanker, 2009).
    """

    budget: int | None = None
    target: float | None = None
    target_metric: str = "accuracy"
    plateau: bool = True
    kappa_threshold: float = 0.99
    window: int = 3
    enforce_budget: bool = False
    """Queries are refused once the budget is spent (the rules above only recommend)."""

    def __post_init__(self):
        if self.budget is not None and self.budget < 1:
            raise ValueError("budget must be at least 1")
        if not 0 < self.kappa_threshold <= 1:
            raise ValueError("kappa_threshold must lie in (0, 1]")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.enforce_budget and self.budget is None:
            raise ValueError("enforce_budget needs a budget")

    @classmethod
    def from_spec(cls, spec: dict | None) -> StoppingPolicy:
        """The policy of a pool's JSON `stopping` spec (validated by the API's schema); None: defaults."""
        spec = spec or {}
        target, plateau = spec.get("target"), spec.get("plateau", {})
        return cls(
            budget=spec.get("budget"),
            enforce_budget=bool(spec.get("enforce_budget", False)),
            target=target["value"] if target else None,
            target_metric=target["metric"] if target else "accuracy",
            plateau=plateau is not None,
            kappa_threshold=(plateau or {}).get("kappa", cls.kappa_threshold),
            window=(plateau or {}).get("window", cls.window),
        )

    def to_spec(self) -> dict:
        """The JSON form from_spec reads, with every default filled in."""
        return {
            "budget": self.budget,
            "enforce_budget": self.enforce_budget,
            "target": None if self.target is None else {"metric": self.target_metric, "value": self.target},
            "plateau": {"kappa": self.kappa_threshold, "window": self.window} if self.plateau else None,
        }

    def without_budget(self) -> StoppingPolicy:
        """The rules that depend on models only; the budget depends on the live label count."""
        return replace(self, budget=None, enforce_budget=False)


@dataclass(frozen=True)
class Round:
    """What one model version left behind for the stopping rules."""

    n_labels: int
    metrics: dict = field(default_factory=dict)
    kappa_with_previous: float | None = None


def plateau_reached(kappas: list[float | None], threshold: float, window: int) -> bool:
    """Whether the last `window` kappas all exceed `threshold` (None: no previous model to compare)."""
    recent = kappas[-window:]
    return len(recent) == window and all(k is not None and k > threshold for k in recent)


def budget_reason(n_labels: int, budget: int | None) -> str | None:
    """Why to stop for the budget's sake, or None while labels remain."""
    if budget is not None and n_labels >= budget:
        return f"budget: {n_labels} labels spent of {budget}"
    return None


def with_budget(model_reasons: list[str], n_labels: int, budget: int | None) -> dict:
    """A recommendation from the model rules' reasons plus the budget, checked against the live count."""
    spent = budget_reason(n_labels, budget)
    reasons = [spent, *model_reasons] if spent else list(model_reasons)
    return {"recommended": bool(reasons), "reasons": reasons}


def choose_stop_set(candidates: np.ndarray, seed: int, size: int = STOP_SET_SIZE) -> np.ndarray:
    """A seeded sample of at most `size` rows among `candidates` (the unlabeled rows), in row order."""
    candidates = np.sort(np.asarray(candidates, dtype=np.int64))
    if len(candidates) <= size:
        return candidates
    return np.sort(np.random.default_rng([seed, 1]).choice(candidates, size=size, replace=False))


def recommendation(policy: StoppingPolicy, rounds: list[Round]) -> dict:
    """{"recommended": bool, "reasons": [...]} for a pool whose model versions left `rounds`, oldest first."""
    reasons = []
    if rounds:
        last = rounds[-1]
        spent = budget_reason(last.n_labels, policy.budget)
        if spent:
            reasons.append(spent)
        value = last.metrics.get(policy.target_metric)
        if policy.target is not None and value is not None and value >= policy.target:
            estimated = " (cross-validated estimate)" if last.metrics.get("source") == "cross_validation" else ""
            reasons.append(f"target: {policy.target_metric} {value:.4f} >= {policy.target}{estimated}")
        if policy.plateau and plateau_reached(
            [r.kappa_with_previous for r in rounds], policy.kappa_threshold, policy.window
        ):
            reasons.append(
                f"plateau: predictions agreed with kappa > {policy.kappa_threshold} for {policy.window} rounds"
            )
    return {"recommended": bool(reasons), "reasons": reasons}
