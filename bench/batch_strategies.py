"""How long `select` takes to pick k rows from a large pool, for every strategy that is not a plain
ranking (and the ranking ones whose scores need more than the probabilities).

No stack: the core alone, in process, as a worker would call it. A synthetic pool (make_classification,
`--items` x `--features`, 10 classes), 200 labeled rows, a logistic regression fitted on them and its
probabilities for every row; then, for each strategy, the time of `select(strategy, candidates, k)`
(median of `--repeats` runs, each with a fresh seeded generator), with one BLAS thread as in a worker.

"cold start" is the batch every strategy but random answers before there is a model (k-means++ seeding).

Goal: every batch strategy, and the cold-start batch, picks k = 100 from 100k x 64 in at most 2 s.

    pip install -e '.[bench]'
    python bench/batch_strategies.py [--items 100000] [--features 64] [--k 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import pool_arguments, report, run, synthetic  # noqa: E402

from sieve.core.fitting import fit, predict_proba  # noqa: E402
from sieve.core.selection import BATCH_STRATEGIES, Candidates, select  # noqa: E402

GOAL_SECONDS = 2.0
N_CLASSES = 10
N_LABELED = 200
EXTRA = ("qbc_vote_entropy", "qbc_kl", "density_weighted")
"""Ranking strategies timed alongside: their scores cost more than the probabilities already there."""


def candidates(X, labeled, labels, proba, model, seed: int) -> Candidates:
    unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
    return Candidates(
        features=X,
        unlabeled=unlabeled,
        labeled=labeled,
        labels=labels,
        proba=proba,
        model=model,
        spec={},
        rng=np.random.default_rng(seed),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    pool_arguments(parser, single_size=100_000)
    parser.add_argument("--k", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per strategy (default 3)")
    args = parser.parse_args()

    X, y = synthetic(args.items, args.features, n_classes=N_CLASSES)
    X = X.astype(np.float32)  # what a worker holds in its feature cache
    labeled = np.sort(np.random.default_rng(0).choice(len(X), N_LABELED, replace=False))
    labels = y[labeled]
    warnings.simplefilter("ignore")  # convergence chatter of fits on 200 rows says nothing here
    with threadpool_limits(1):
        model = fit(X, labeled, labels, {}, random_state=0)
        started = time.perf_counter()
        proba = predict_proba(model, X)
        print(
            f"pool {args.items:,} x {args.features}, {N_CLASSES} classes, {N_LABELED} labeled; "
            f"predict_proba of every row (done before any strategy) {time.perf_counter() - started:.2f} s; "
            f"k = {args.k}, median of {args.repeats}, one BLAS thread",
            flush=True,
        )
        verdicts, timings = [], {}
        strategies = BATCH_STRATEGIES + EXTRA + ("cold start",)
        for strategy in tqdm(strategies, desc="strategies", leave=False):
            times = []
            for seed in range(args.repeats):
                c = candidates(X, labeled, labels, None if strategy == "cold start" else proba, model, seed)
                started = time.perf_counter()
                picked = select("kcenter" if strategy == "cold start" else strategy, c, args.k)
                times.append(time.perf_counter() - started)
                if len(np.unique(picked)) != min(args.k, len(c.unlabeled)) or np.isin(picked, labeled).any():
                    raise RuntimeError(f"{strategy} picked a wrong batch")
            timings[strategy] = float(np.median(times))
            tqdm.write(f"  {strategy:18s} {timings[strategy]:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})")
        for strategy in BATCH_STRATEGIES + ("cold start",):
            verdicts.append(
                (
                    f"{strategy}: k = {args.k} from {args.items:,} x {args.features} in "
                    f"{timings[strategy]:.2f} s (goal <= {GOAL_SECONDS:.0f} s)",
                    timings[strategy] <= GOAL_SECONDS,
                )
            )
    return report(
        verdicts, notes=("ranking strategies (timed, no goal): " + ", ".join(f"{s} {timings[s]:.2f} s" for s in EXTRA),)
    )


if __name__ == "__main__":
    run(main)
