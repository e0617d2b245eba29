"""Learning curves of every strategy and seed summed up into results.json and a printed table."""

from __future__ import annotations

import numpy as np

from sieve.simulate.metrics import aulc, labels_to, median_or_none, paired, stop_point
from sieve.simulate.trace import Trace

BASELINE = "random"


def _curve(traces: list[Trace]) -> dict:
    # Every seed spends labels on the same schedule; a shorter run (an exhausted pool) trims the rest.
    n = min(len(t.labels) for t in traces)
    accuracy = np.array([t.accuracy[:n] for t in traces])
    return {
        "labels": traces[0].labels[:n],
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
    dataset: str, n_pool: int, n_test: int, full: list[float], traces: dict[str, list[Trace]], settings: dict
) -> dict:
    """`traces[strategy][i]` and `full[i]` belong to the i-th seed."""
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
    return {
        "dataset": dataset,
        "n_pool": n_pool,
        "n_test": n_test,
        "full_pool_accuracy": float(np.mean(full)),
        "full_pool_accuracy_per_seed": full,
        "settings": settings,
        "ranking_by_daulc": ranking,
        "strategies": strategies,
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
    return "\n".join(lines)
