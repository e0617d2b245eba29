"""The loop in process: fit, measure, pick a batch with the strategy, add its true labels, again."""
from __future__ import annotations

import numpy as np

from sieve.core.selection import Candidates, select
from sieve.core.training import predict_proba, unlabeled_rows

from .protocol import Setup, decode, fit, label_texts
from .trace import Trace, batch_size_now

FIRST_VERSION = 2
"""A Sieve pool created with its items and initial labels in one call is at version 2 when first
ranked, and each teach call adds one. Its random order at version v is drawn from the generator
seeded with [seed, v], so the same generator here picks the same random rows."""


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
        candidates = Candidates(features=setup.X_pool, unlabeled=unlabeled, labeled=labeled,
                                labels=np.asarray(label_texts(setup.y_pool[labeled])), proba=proba, model=model,
                                spec=spec, rng=np.random.default_rng([setup.seed, version]))
        picked = select(strategy, candidates, k)
        trace.picked(picked)
        labeled = np.concatenate([labeled, picked])
        version += 1
