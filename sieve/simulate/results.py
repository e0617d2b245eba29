"""Learning curves of every strategy and seed summed up into results.json and a printed table."""

from __future__ import annotations

import math

import numpy as np

from sieve.simulate.metrics import (
    aulc,
    cross_validation_bias,
    interval_coverage,
    labels_to,
    median_or_none,
    paired,
    stop_point,
    target_stop,
)
from sieve.simulate.trace import Trace

BASELINE = "random"

TARGET_SHARE = 0.9
"""Without --target, the target rule is measured at this share of the mean full-pool accuracy (two
decimals, rounded down): a level every strategy reaches within the budget on the data sets measured."""


def default_target(full: list[float]) -> float:
    return math.floor(100 * TARGET_SHARE * float(np.mean(full))) / 100


def _audited(runs: list[Trace], baseline: list[Trace] | None, target: float) -> dict:
    """A strategy with audit items: its AULC over every label spent (audit items count) against random's
    without any, the estimates' coverage and width, the target rule, and the cross-validated bias."""
    aulcs = [aulc(t.spent, t.accuracy) for t in runs]
    summary = {"aulc": float(np.median(aulcs)), "aulc_per_seed": aulcs}
    if baseline is not None:
        base = [aulc(t.labels, t.accuracy) for t in baseline]
        summary.update(paired(aulcs, base))
        summary["daulc_mean"] = float(np.mean(np.asarray(aulcs) - np.asarray(base)))
    summary.update(interval_coverage(runs))
    stops = [target_stop(t.spent, t.accuracy, t.estimates, target) for t in runs]
    summary["target"] = {
        "value": target,
        "fired": sum(s["labels"] is not None for s in stops),
        "false_stops": sum(s["false_stop"] for s in stops),
        "labels": median_or_none([s["labels"] for s in stops]),
        "hindsight": median_or_none([s["hindsight"] for s in stops]),
        "ratio": median_or_none([s["ratio"] for s in stops]),
        "per_seed": stops,
    }
    summary["cross_validation"] = cross_validation_bias(runs)
    summary["curve"] = _curve(runs, spent=True)
    return summary


def _curve(traces: list[Trace], spent: bool = False) -> dict:
    # Every seed spends labels on the same schedule; a shorter run (an exhausted pool) trims the rest.
    n = min(len(t.labels) for t in traces)
    accuracy = np.array([t.accuracy[:n] for t in traces])
    return {
        "labels": (traces[0].spent if spent else traces[0].labels)[:n],
        "mean": accuracy.mean(axis=0).tolist(),
        "std": accuracy.std(axis=0).tolist(),
    }


def _stop(traces: list[Trace], full: list[float]) -> dict:
    per_seed = [stop_point(t.labels, t.accuracy, t.kappas, f) for t, f in zip(traces, full)]
    shares = [p["accuracy_share"] for p in per_seed if p["accuracy_share"] is not None]
    return {
        "rule": "kappa > 0.99 between consecutive models' stop-set predictions for 3 rounds",
        "fired": sum(p["labels"] is not None for p in per_seed),
        "good": sum(p["good"] for p in per_seed),
        "labels": median_or_none([p["labels"] for p in per_seed]),
        "accuracy_share": float(np.median(shares)) if shares else None,
        "per_seed": per_seed,
    }


def summarize(
    dataset: str,
    n_pool: int,
    n_test: int,
    full: list[float],
    traces: dict[str, list[Trace]],
    settings: dict,
    audited: dict[tuple[str, float], list[Trace]] | None = None,
    target: float | None = None,
) -> dict:
    """`traces[strategy][i]`, `audited[(strategy, audit rate)][i]` and `full[i]` belong to the i-th seed."""
    aulcs = {s: [aulc(t.labels, t.accuracy) for t in ts] for s, ts in traces.items()}
    to = {
        x: {
            s: median_or_none([labels_to(t.labels, t.accuracy, x / 100 * f) for t, f in zip(ts, full)])
            for s, ts in traces.items()
        }
        for x in (95, 99)
    }
    strategies = {}
    for name, runs in traces.items():
        base95 = to[95].get(BASELINE)
        summary = {
            "aulc": float(np.median(aulcs[name])),
            "daulc": None,
            "wins": None,
            "ties": None,
            "losses": None,
            "labels_to_95": to[95][name],
            "labels_to_99": to[99][name],
            "ratio_95_vs_random": (to[95][name] / base95 if to[95][name] is not None and base95 else None),
            "aulc_per_seed": aulcs[name],
        }
        if BASELINE in aulcs:
            summary.update(paired(aulcs[name], aulcs[BASELINE]))
        summary["curve"] = _curve(runs)
        summary["stop"] = _stop(runs, full)
        strategies[name] = summary
    ranking = sorted(strategies, key=lambda s: (strategies[s]["daulc"] or 0.0, strategies[s]["aulc"]), reverse=True)
    target = default_target(full) if target is None else target
    audits = {
        f"{name}@{rate:g}": {"strategy": name, "rate": rate, **_audited(runs, traces.get(BASELINE), target)}
        for (name, rate), runs in (audited or {}).items()
    }
    return {
        "dataset": dataset,
        "n_pool": n_pool,
        "n_test": n_test,
        "full_pool_accuracy": float(np.mean(full)),
        "full_pool_accuracy_per_seed": full,
        "settings": settings,
        "ranking_by_daulc": ranking,
        "strategies": strategies,
        "audit": audits,
    }


def _fmt(value, spec: str) -> str:
    width = int("".join(c for c in spec.split(".")[0] if c.isdigit()) or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def table(results: dict) -> str:
    """One line per strategy, best dAULC first."""
    head = (
        f"{'strategy':<18} {'AULC':>6} {'dAULC':>7} {'to 95%':>7} {'ratio':>6} {'W/T/L':>8}"
        f" {'stop at':>8} {'acc/full':>8} {'fired':>6} {'good':>6}"
    )
    lines = [
        f"{results['dataset']}: pool {results['n_pool']}, test {results['n_test']}, "
        f"full-pool accuracy {results['full_pool_accuracy']:.4f}",
        head,
    ]
    for name in results["ranking_by_daulc"]:
        s = results["strategies"][name]
        wtl = "-" if s["wins"] is None else f"{s['wins']}/{s['ties']}/{s['losses']}"
        stop = s["stop"]
        lines.append(
            f"{name:<18} {s['aulc']:6.4f} {_fmt(s['daulc'], '+7.4f')} {_fmt(s['labels_to_95'], '7.0f')}"
            f" {_fmt(s['ratio_95_vs_random'], '6.2f')} {wtl:>8} {_fmt(stop['labels'], '8.0f')}"
            f" {_fmt(stop['accuracy_share'], '8.3f')} {stop['fired']:>3}/{len(stop['per_seed']):<2}"
            f" {stop['good']:>3}/{len(stop['per_seed']):<2}"
        )
    if results.get("audit"):
        lines.append(audit_table(results))
    return "\n".join(lines)


def audit_table(results: dict) -> str:
    """One line per strategy and audit rate: the estimate's coverage and width, dAULC with audit labels
    spent, the target rule, and the cross-validated estimate's bias."""
    seeds = len(results["full_pool_accuracy_per_seed"])
    lines = [
        f"{'with audit':<18} {'cover':>6} {'n>=10':>6} {'width':>6} {'dAULC':>7} {'mean':>7}"
        f" {'target':>6} {'fired':>6} {'false':>6} {'stop at':>8} {'hindsight':>9} {'ratio':>6} {'CV bias':>8}"
    ]
    for key, a in results["audit"].items():
        t = a["target"]
        lines.append(
            f"{key:<18} {_fmt(a['coverage'], '6.3f')} {_fmt(a['coverage_n10'], '6.3f')} {_fmt(a['mean_width'], '6.3f')}"
            f" {_fmt(a.get('daulc'), '+7.4f')} {_fmt(a.get('daulc_mean'), '+7.4f')} {t['value']:6.2f}"
            f" {t['fired']:>3}/{seeds:<2} {t['false_stops']:>3}/{seeds:<2} {_fmt(t['labels'], '8.0f')}"
            f" {_fmt(t['hindsight'], '9.0f')} {_fmt(t['ratio'], '6.2f')} {_fmt(a['cross_validation']['bias'], '+8.4f')}"
        )
    return "\n".join(lines)
