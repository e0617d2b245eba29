"""How soon a label shows in the ranking: from teach's 202 to the first /query that reflects it.

Starts its own stack (embedded Redis in a temp dir, one worker, the API with 1 gevent process on a
free port), registers synthetic pools of each size x 64 features and teaches 20 labels. Then, per pool,
`--rounds` times: take the current top item from /query, teach it with its true label, and time from
the teach call's 202 to the first `/query?k=1` answer whose `ranked_labels_version` is at least the
`labels_version` teach returned, polling every 10 ms. Also shows how much of that the worker spent
in the retrain itself (the pool status's `retrain.last_duration_s`).

Goal: median <= 1.5 s at 100k items.

    pip install -e '.[bench]'
    python bench/freshness.py [--sizes 10000,100000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Client, Stack, build_pools, percentile, pool_arguments, report, run  # noqa: E402

POLL_SECONDS = 0.01
ROUND_TIMEOUT = 120.0
MEDIAN_GOAL_S = 1.5
GOAL_SIZE = 100_000


def rounds_on(client: Client, pool, rounds: int, desc: str) -> tuple[list[float], list[float]]:
    """Per round: seconds from teach's 202 to a fresh /query, and the worker's retrain duration."""
    lags, job_seconds = [], []
    for _ in tqdm(range(rounds), desc=desc, unit="round", leave=False):
        top = client.query(pool.pool_id, k=1)
        assert top["ranked_labels_version"] >= top["labels_version"], top
        item_id = top["items"][0]["id"]
        taught = client.teach(pool.pool_id, [(item_id, int(pool.y[pool.row_of(item_id)]))])
        accepted_at = time.perf_counter()
        wanted = taught["labels_version"]
        while True:
            # Polls without leasing, as a dashboard would: the item stays free for the next round.
            answer = client.query(pool.pool_id, k=1, lease_seconds=0)
            if answer["ranked_labels_version"] >= wanted:
                lags.append(time.perf_counter() - accepted_at)
                break
            if time.perf_counter() - accepted_at > ROUND_TIMEOUT:
                raise RuntimeError(
                    f"labels_version {wanted} not ranked after {ROUND_TIMEOUT} s: {client.status(pool.pool_id)}"
                )
            time.sleep(POLL_SECONDS)
        status = client.wait_idle(pool.pool_id, timeout=600, raise_on_error=True)
        job_seconds.append(status["retrain"]["last_duration_s"] or float("nan"))
    return lags, job_seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pool_arguments(parser)
    parser.add_argument("--rounds", type=int, default=15, help="teach-then-query rounds per pool (default 15)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = sorted(set(args.sizes))

    with Stack(api_processes=1, workers=1) as stack:
        client = stack.client(timeout=300)
        results = {
            size: rounds_on(client, pool, args.rounds, f"rounds at {size:,}")
            for size, pool in build_pools(client, sizes, args.features)
        }

    print()
    print(
        f"teach 1 label -> first /query with ranked_labels_version >= its labels_version "
        f"(polled every {POLL_SECONDS * 1000:.0f} ms); {args.rounds} rounds per pool; 1 worker, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    header = (
        f"{'pool size':>10} | {'median s':>8} | {'p90 s':>7} | {'min s':>7} | {'max s':>7} | "
        f"{'retrain median s':>16} | {'rest median s':>13}"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for size in sizes:
        lags, jobs = (np.asarray(x) for x in results[size])
        medians[size] = percentile(lags, 50)
        rest = lags - jobs
        print(
            f"{size:>10,} | {medians[size]:>8.3f} | {percentile(lags, 90):>7.3f} | {lags.min():>7.3f} | "
            f"{lags.max():>7.3f} | {np.nanmedian(jobs):>16.3f} | {np.nanmedian(rest):>13.3f}"
        )
    print(
        "(retrain: the worker's own timing of one refresh, features to rankings; rest: queueing, claim, "
        "publish and polling)"
    )
    print()
    goal_size = GOAL_SIZE if GOAL_SIZE in sizes else sizes[-1]
    notes = (
        ()
        if goal_size == GOAL_SIZE
        else (f"  (no {GOAL_SIZE:,} pool in --sizes: the goal was checked at {goal_size:,})",)
    )
    return report(
        [
            (
                f"median at {goal_size:,} = {medians[goal_size]:.3f} s <= {MEDIAN_GOAL_S} s",
                medians[goal_size] <= MEDIAN_GOAL_S,
            )
        ],
        notes,
    )


if __name__ == "__main__":
    run(main)
