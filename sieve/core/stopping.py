"""When to stop labeling: a label budget, a target metric, and a plateau of the model's accuracy (or of
its predictions, without an unbiased estimate)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sieve.core.estimate import BIASED_SOURCES

MAX_AUDIT_RATE = 0.5
"""Most share of served items that may be audit items: past half, the strategy would serve the minority."""

TARGET_MIN_ITEMS = 10
"""The target rule waits for this many items behind the accuracy estimate. The rule looks at the bound
after every model, and each look is another chance for a bound from a handful of items to pass a target
the model is below (2 of 2 right gives a lower bound of 0.42 whatever the accuracy): in `sieve simulate`,
the stops the rule made on fewer items were the false ones (docs/simulations.md)."""

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
    target: stop once the lower end of the 90 % interval of the accuracy estimate reaches `target`
    (macro-F1, which has no interval in the history: once its value does).
    plateau: with unbiased accuracy estimates (evaluation or audit items) now and `gain_labels` labels
    ago, stop once the upper end of the 90 % interval of the gain between the two models is below
    `min_gain` (gain_upper); without them, once consecutive models' predictions on a fixed stop set agree
    with Cohen's kappa above `kappa_threshold` for `window` rounds in a row (Bloodgood and
    Vijay-Shanker, 2009).
    """

    budget: int | None = None
    target: float | None = None
    target_metric: str = "accuracy"
    plateau: bool = True
    kappa_threshold: float = 0.99
    window: int = 3
    min_gain: float = 0.01
    gain_labels: int = 100
    enforce_budget: bool = False
    """Queries are refused once the budget is spent (the rules above only recommend)."""
    audit_rate: float = 0.0
    """Share of the items queries hand out that are audit items: drawn uniformly at random from the
    unlabeled rows, their labels go to the evaluation split (see core/audit.py). 0: off."""

    def __post_init__(self):
        if self.budget is not None and self.budget < 1:
            raise ValueError("budget must be at least 1")
        if not 0 < self.kappa_threshold <= 1:
            raise ValueError("kappa_threshold must lie in (0, 1]")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not 0 < self.min_gain <= 1 or self.gain_labels < 1:
            raise ValueError("the plateau's gain must lie in (0, 1] and its labels be at least 1")
        if self.enforce_budget and self.budget is None:
            raise ValueError("enforce_budget needs a budget")
        if not 0 <= self.audit_rate <= MAX_AUDIT_RATE:
            raise ValueError(f"audit rate must lie in [0, {MAX_AUDIT_RATE}]")

    @classmethod
    def from_spec(cls, spec: dict | None) -> StoppingPolicy:
        """The policy of a pool's JSON `stopping` spec (validated by the API's schema); None: defaults."""
        spec = spec or {}
        target, plateau, audit = spec.get("target"), spec.get("plateau", {}), spec.get("audit")
        return cls(
            budget=spec.get("budget"),
            enforce_budget=bool(spec.get("enforce_budget", False)),
            target=target["value"] if target else None,
            target_metric=target["metric"] if target else "accuracy",
            plateau=plateau is not None,
            kappa_threshold=(plateau or {}).get("kappa", cls.kappa_threshold),
            window=(plateau or {}).get("window", cls.window),
            min_gain=(plateau or {}).get("gain", cls.min_gain),
            gain_labels=(plateau or {}).get("labels", cls.gain_labels),
            audit_rate=float(audit["rate"]) if audit else 0.0,
        )

    def to_spec(self) -> dict:
        """The JSON form from_spec reads, with every default filled in."""
        return {
            "budget": self.budget,
            "enforce_budget": self.enforce_budget,
            "target": None if self.target is None else {"metric": self.target_metric, "value": self.target},
            "plateau": {
                "kappa": self.kappa_threshold,
                "window": self.window,
                "gain": self.min_gain,
                "labels": self.gain_labels,
            }
            if self.plateau
            else None,
            "audit": {"rate": self.audit_rate} if self.audit_rate else None,
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
    estimate: dict | None = None
    """The accuracy estimate with its interval (core/estimate.py), when the model has metrics."""

    @property
    def unbiased(self) -> bool:
        return self.estimate is not None and self.estimate["source"] not in BIASED_SOURCES


def gain_upper(now: dict, then: dict) -> float:
    """Upper end of the interval of accuracy(now) - accuracy(then), from the two estimates' Wilson
    intervals by Newcombe's hybrid score method (Newcombe 1998, "Interval estimation for the difference
    between independent proportions", method 10): d + sqrt((high_now - now)^2 + (then - low_then)^2).
    Its level is the estimates' (90 %, two-sided: the gain exceeds it with probability at most 5 %). The
    method assumes independent samples; the two models are scored on mostly the same evaluation items,
    whose errors are positively correlated, so the true interval of the paired difference is narrower
    and this bound is conservative: the plateau fires late rather than early."""
    d = now["value"] - then["value"]
    return d + math.sqrt((now["high"] - now["value"]) ** 2 + (then["value"] - then["low"]) ** 2)


def gain_reason(rounds: list[Round], min_gain: float, labels: int) -> str | None:
    """Why the accuracy has reached a plateau, or None: the latest model and the latest one fitted on at
    most `labels` fewer labels both have unbiased estimates, and the gain's upper bound is below
    `min_gain`."""
    now = rounds[-1]
    before = [r for r in rounds if r.n_labels <= now.n_labels - labels]
    if not now.unbiased or not before or not before[-1].unbiased:
        return None
    then = before[-1]
    upper = gain_upper(now.estimate, then.estimate)
    if upper >= min_gain:
        return None
    return (
        f"plateau: accuracy gained at most {upper:+.4f} (90 % bound) over the last "
        f"{now.n_labels - then.n_labels} labels, below {min_gain}"
    )


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


def target_reason(policy: StoppingPolicy, last: Round) -> str | None:
    """Why the target is reached, or None: for accuracy, the lower end of the estimate's interval is at
    or above it (so the accuracy is below it with probability at most 5 %, for an unbiased estimate),
    from at least TARGET_MIN_ITEMS items; for macro-F1, its value."""
    if policy.target is None:
        return None
    biased = " (cross-validated estimate, biased)" if last.metrics.get("source") in BIASED_SOURCES else ""
    if policy.target_metric == "accuracy" and last.estimate is not None:
        low = last.estimate["low"]
        if low >= policy.target and last.estimate["n"] >= TARGET_MIN_ITEMS:
            return f"target: accuracy >= {low:.4f} (90 % lower bound) >= {policy.target}{biased}"
        return None
    value = last.metrics.get(policy.target_metric)
    if value is not None and value >= policy.target:
        return f"target: {policy.target_metric} {value:.4f} >= {policy.target}{biased}"
    return None


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
        reached = target_reason(policy, last)
        if reached:
            reasons.append(reached)
        if policy.plateau:
            if last.unbiased:
                flat = gain_reason(rounds, policy.min_gain, policy.gain_labels)
                if flat:
                    reasons.append(flat)
            elif plateau_reached([r.kappa_with_previous for r in rounds], policy.kappa_threshold, policy.window):
                reasons.append(
                    f"plateau: predictions agreed with kappa > {policy.kappa_threshold} for {policy.window} rounds"
                )
    return {"recommended": bool(reasons), "reasons": reasons}
