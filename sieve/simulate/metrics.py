"""Figures drawn from learning curves: area under the curve, labels to a target, paired comparisons."""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import trapezoid

from sieve.core.stopping import TARGET_MIN_ITEMS, Round, StoppingPolicy, plateau_reached, target_reason

TIE = 0.005
"""Two strategies' AULC on one seed closer than this count as a tie."""

GOOD_STOP_SHARE = 0.97
"""A stop is good when its accuracy is at least this share of full-pool accuracy ..."""
GOOD_STOP_SLACK = 1.5
"""... and it spent at most this many times the labels that first reached that share."""


def aulc(labels, accuracy) -> float:
    """Mean accuracy over the labels spent: the trapezoid area under the curve over the labels range."""
    labels, accuracy = np.asarray(labels, dtype=float), np.asarray(accuracy, dtype=float)
    if len(labels) == 0:
        raise ValueError("a learning curve needs at least one point")
    span = labels[-1] - labels[0]
    return float(accuracy[0]) if span == 0 else float(trapezoid(accuracy, labels) / span)


def labels_to(labels, accuracy, target: float) -> int | None:
    """Labels at which accuracy first reaches `target`; None when it never does."""
    reached = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(labels[reached[0]]) if reached.size else None


def median_or_none(values) -> float | None:
    """Median where None counts as never (infinitely many labels): None when the median seed never got there."""
    value = float(np.median([math.inf if v is None else v for v in values]))
    return None if math.isinf(value) else value


def paired(values, baseline) -> dict:
    """Per-seed differences against the baseline: their median, and wins, ties and losses (|diff| < TIE)."""
    diffs = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    return {
        "daulc": float(np.median(diffs)),
        "wins": int(np.sum(diffs >= TIE)),
        "ties": int(np.sum(np.abs(diffs) < TIE)),
        "losses": int(np.sum(diffs <= -TIE)),
    }


def stop_point(labels, accuracy, kappas, full_accuracy: float, policy: StoppingPolicy | None = None) -> dict:
    """Where the plateau rule (stabilizing predictions) would have stopped this run, and whether that was good:
    accuracy there at least GOOD_STOP_SHARE of full-pool accuracy, with at most GOOD_STOP_SLACK times the labels
    that first reached that share."""
    policy = policy or StoppingPolicy()
    needed = labels_to(labels, accuracy, GOOD_STOP_SHARE * full_accuracy)
    for i in range(len(kappas)):
        if plateau_reached(kappas[: i + 1], policy.kappa_threshold, policy.window):
            share = accuracy[i] / full_accuracy
            good = share >= GOOD_STOP_SHARE and needed is not None and labels[i] <= GOOD_STOP_SLACK * needed
            return {
                "labels": int(labels[i]),
                "accuracy_share": float(share),
                "good": bool(good),
                "labels_to_97": needed,
            }
    return {"labels": None, "accuracy_share": None, "good": False, "labels_to_97": needed}


def interval_coverage(traces) -> dict:
    """How often the estimates' intervals held the test accuracy, over every round with an estimate of every
    run; their mean width; and the coverage of the rounds with at least TARGET_MIN_ITEMS audit items, those the
    target rule looks at."""
    held, widths, held10 = [], [], []
    for t in traces:
        for truth, e in zip(t.accuracy, t.estimates):
            if e is None:
                continue
            inside = e["low"] <= truth <= e["high"]
            held.append(inside)
            widths.append(e["high"] - e["low"])
            if e["n"] >= TARGET_MIN_ITEMS:
                held10.append(inside)
    return {
        "rounds": len(held),
        "coverage": float(np.mean(held)) if held else None,
        "coverage_n10": float(np.mean(held10)) if held10 else None,
        "mean_width": float(np.mean(widths)) if widths else None,
    }


def target_stop(spent, accuracy, estimates, target: float) -> dict:
    """Where the pool's target rule (core/stopping.py: the estimate's lower bound at or above `target`)
    stops a run; whether the test accuracy there is below the target (a false stop); and the fewest labels
    at which the test accuracy first reached it (hindsight)."""
    hindsight = labels_to(spent, accuracy, target)
    policy = StoppingPolicy(target=target, plateau=False)
    for i, e in enumerate(estimates):
        if e is not None and target_reason(policy, Round(int(spent[i]), {"source": e["source"]}, estimate=e)):
            return {
                "labels": int(spent[i]),
                "accuracy": float(accuracy[i]),
                "false_stop": bool(accuracy[i] < target),
                "hindsight": hindsight,
                "ratio": spent[i] / hindsight if hindsight else None,
            }
    return {"labels": None, "accuracy": None, "false_stop": False, "hindsight": hindsight, "ratio": None}


def cross_validation_bias(traces) -> dict:
    """Mean and mean absolute difference between the cross-validated accuracy and the test accuracy, over
    every round that has one."""
    diffs = [cv - truth for t in traces for truth, cv in zip(t.accuracy, t.cross_validated) if cv is not None]
    return {
        "rounds": len(diffs),
        "bias": float(np.mean(diffs)) if diffs else None,
        "mean_abs": float(np.mean(np.abs(diffs))) if diffs else None,
    }
