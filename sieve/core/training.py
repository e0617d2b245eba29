"""One refresh of a pool, as pure computation: fit on the labeled rows, score and rank the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sieve.core.fitting import fit, predict_proba
from sieve.core.selection import ALL_STRATEGIES, BATCH_STRATEGIES, Candidates, ranking_scores, select
from sieve.core.strategies import STRATEGIES, margin, random_scores, ranking

ALWAYS_RANKED: tuple[str, ...] = STRATEGIES
"""Strategies every refresh ranks: they all come from the one predict_proba pass it needs anyway.
Others are ranked for a pool once it uses them (its default, or asked for by a query)."""


@dataclass
class Rankings:
    """Each ranked strategy's order of the unlabeled rows (most informative first) and their scores."""

    cold_start: bool
    model: object | None
    classes: list[str]
    proba: np.ndarray | None
    orders: dict[str, tuple[np.ndarray, np.ndarray]]
    fit_seconds: float = 0.0
    score_seconds: float = 0.0


def unlabeled_rows(n_items: int, *labeled_rows: np.ndarray) -> np.ndarray:
    """Rows in none of the given sets (training labels, evaluation items)."""
    mask = np.ones(n_items, dtype=bool)
    for rows in labeled_rows:
        mask[rows[rows < n_items]] = False
    return np.flatnonzero(mask)


def _order(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = ranking(values)
    return rows[order], values[order]


def _head_first(head: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The batch `head` first, then the other rows in the order of `rest`. A batch has no score per
    row: each row's score is its place in the order, from 1 (first) down towards 0."""
    order = np.concatenate([head, rest[~np.isin(rest, head)]])
    return order, 1.0 - np.arange(len(order)) / max(len(order), 1)


def rank_pool(
    features,
    labeled_rows: np.ndarray,
    labels: list[str],
    spec: dict,
    seed: int,
    version: int,
    model=None,
    strategies=ALWAYS_RANKED,
    horizon: int = 256,
    featurizer: dict | None = None,
    eval_rows: np.ndarray | None = None,
) -> Rankings:
    """Fits (unless a model for these labels is given) and orders every unlabeled row for each of
    `strategies` (random always included). `features` is an array, or a text pool's CSR matrix.
    Evaluation rows are neither trained on nor ranked.

    A batch strategy orders its batch of `horizon` rows first (so a query for k <= horizon gets the
    first k of that batch; consecutive queries get consecutive slices of it), then the rest by margin.
    With fewer than two classes there is no model: every strategy but random starts with a diverse
    batch (k-means++ over the features) and goes on in random order, and the result says it is a
    cold start.
    """
    n_items = features.shape[0]
    rows = unlabeled_rows(n_items, labeled_rows, np.zeros(0, dtype=np.int64) if eval_rows is None else eval_rows)
    strategies = dict.fromkeys(["random", *strategies])
    unknown = [s for s in strategies if s not in ALL_STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}")

    def rng(strategy: str) -> np.random.Generator:
        # Seeded by the pool, its version and the strategy: a re-run job produces the very same orders.
        return np.random.default_rng([seed, version, ALL_STRATEGIES.index(strategy)])

    random_order = _order(rows, random_scores(len(rows), rng("random")))
    orders = {"random": random_order}
    cold = len(set(labels)) < 2
    started = fitted = time.perf_counter()
    if cold:
        model, proba = None, None
    else:
        if model is None:
            model = fit(features, labeled_rows, labels, spec, random_state=seed, featurizer=featurizer)
        fitted = time.perf_counter()
        proba = predict_proba(model, features)
    cold_order = margin_order = None
    for strategy in strategies:
        if strategy == "random":
            continue
        candidates = Candidates(
            features=features,
            unlabeled=rows,
            labeled=labeled_rows,
            labels=np.asarray(labels),
            proba=proba,
            model=model,
            spec=spec,
            rng=rng(strategy),
        )
        if cold:
            if cold_order is None:  # the same diverse first batch whatever the strategy
                cold_order = _head_first(select(strategy, candidates, horizon), random_order[0])
            orders[strategy] = cold_order
        elif strategy in BATCH_STRATEGIES:
            if margin_order is None:
                margin_order = _order(rows, margin(proba[rows]))[0]
            orders[strategy] = _head_first(select(strategy, candidates, horizon), margin_order)
        else:
            orders[strategy] = _order(rows, ranking_scores(strategy, candidates))
    return Rankings(
        cold_start=cold,
        model=model,
        classes=[] if cold else [str(c) for c in model.classes_],
        proba=proba,
        orders=orders,
        fit_seconds=fitted - started,
        score_seconds=time.perf_counter() - fitted,
    )
