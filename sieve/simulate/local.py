"""The loop in process: fit, measure, pick a batch with the strategy, add its true labels, again."""

from __future__ import annotations

import numpy as np

from sieve.core import estimate, evaluation
from sieve.core.audit import audit_slots
from sieve.core.fitting import predict_proba
from sieve.core.training import RankRequest, rank_pool, unlabeled_rows
from sieve.settings import Settings
from sieve.simulate.protocol import Setup, decode, fit, label_texts
from sieve.simulate.trace import Trace, batch_size_now

FIRST_VERSION = 2
"""A Sieve pool created with its items and initial labels in one call is at version 2 when first
ranked, and each teach call adds one. Its orders at version v are seeded with the pool's seed and v,
so ranking here as a worker does, at the same version, picks the same rows."""


def run_local(
    setup: Setup,
    strategy: str,
    spec: dict,
    batch_size: int,
    budget: int,
    audit_rate: float = 0.0,
    cross_validate: bool = False,
) -> Trace:
    """One run. With `audit_rate`, each batch holds the audit items a query of the pool would serve
    (core/audit.py: the next rows of the random ranking, labeled into the evaluation split), the budget
    counts them, and every round records the estimate the pool would report; `cross_validate` records
    the cross-validated accuracy on the training labels beside it."""
    trace = Trace()
    labeled = setup.initial.copy()
    audited = np.zeros(0, dtype=np.int64)
    version, served = FIRST_VERSION, 0
    while True:
        model = fit(setup, labeled, spec)
        proba = predict_proba(model, setup.X_pool)
        accuracy = np.mean(decode(model, predict_proba(model, setup.X_test)) == setup.y_test)
        trace.record(
            len(labeled),
            accuracy,
            decode(model, proba[setup.stop_rows]),
            spent=len(labeled) + len(audited),
            estimate=_audit_estimate(model, proba, setup, audited),
            cross_validated=_cross_validated(setup, labeled, spec) if cross_validate else None,
        )
        unlabeled = unlabeled_rows(len(setup.y_pool), labeled, audited)
        k = batch_size_now(len(labeled) + len(audited), len(unlabeled), batch_size, budget)
        if k == 0:
            return trace
        # What a query for k answers right after a refresh: the head of the strategy's ranking (for a
        # batch strategy, the first k of its batch for the horizon), exactly as a worker orders it; its
        # audit slots first take the head of the random ranking, and the strategy passes over them.
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
                eval_rows=np.sort(audited),
            )
        )
        n_audit = audit_slots(served, k, audit_rate)
        served += k
        audit = ranked.orders["random"][0][:n_audit]
        order = ranked.orders[strategy][0]
        picked = order[~np.isin(order, audit)][: k - n_audit]
        trace.picked(picked)
        labeled = np.concatenate([labeled, picked])
        audited = np.concatenate([audited, audit])
        version += 1


def _audit_estimate(model, proba: np.ndarray, setup: Setup, audited: np.ndarray) -> dict | None:
    if not len(audited):
        return None
    correct = int(np.sum(decode(model, proba[audited]) == setup.y_pool[audited]))
    return estimate.accuracy(correct, len(audited), evaluation.AUDIT).as_dict()


def _cross_validated(setup: Setup, labeled: np.ndarray, spec: dict) -> float | None:
    """The estimate a pool without evaluation items reports, computed as a worker does."""
    rows = np.sort(labeled)
    metrics = evaluation.cross_validated(
        setup.X_pool, rows, label_texts(setup.y_pool[rows]), spec, setup.seed, fit_seconds=0.0
    )
    return None if metrics is None else metrics["accuracy"]
