"""The loop in process: fit, measure, pick a batch with the strategy, add its true labels, again."""

from __future__ import annotations

import numpy as np

from sieve.core.fitting import predict_proba
from sieve.core.training import RankRequest, rank_pool, unlabeled_rows
from sieve.settings import Settings
from sieve.simulate.protocol import Setup, decode, fit, label_texts
from sieve.simulate.trace import Trace, batch_size_now

FIRST_VERSION = 2
"""A Sieve pool created with its items and initial labels in one call is at version 2 when first
ranked, and each teach call adds one. Its orders at version v are seeded with the pool's seed and v,
so ranking here as a worker does, at the same version, picks the same rows."""


def run_local(setup: Setup, strategy: str, spec: dict, batch_size: int, budget: int) -> Trace:
    trace = Trace()
    labeled = setup.initial.copy()
    version = FIRST_VERSION
    while True:
        model = fit(setup, labeled, spec)
        proba = predict_proba(model, setup.X_pool)
        accuracy = np.mean(decode(model, predict_proba(model, setup.X_test)) == setup.y_test)
        trace.record(len(labeled), accuracy, decode(model, proba[setup.stop_rows]))
        unlabeled = unlabeled_rows(len(setup.y_pool), labeled)
        k = batch_size_now(len(labeled), len(unlabeled), batch_size, budget)
        if k == 0:
            return trace
        # What a query for k answers right after a refresh: the head of the strategy's ranking (for a
        # batch strategy, the first k of its batch for the horizon), exactly as a worker orders it.
        ranked = rank_pool(
            RankRequest(
                setup.X_pool,
                np.sort(labeled),
                label_texts(setup.y_pool[np.sort(labeled)]),
                spec,
                seed=setup.seed,
                version=version,
                model=model,
                strategies=(strategy,),
                horizon=Settings.batch_horizon,
            )
        )
        picked = ranked.orders[strategy][0][:k]
        trace.picked(picked)
        labeled = np.concatenate([labeled, picked])
        version += 1
