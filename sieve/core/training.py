"""One refresh of a pool, as pure computation: fit on the labeled rows, score and rank the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sieve.core.fitting import fit, predict_proba
from sieve.core.registry import BASELINE, BATCH, COLD_START_STREAM, REGISTRY, Registry, stream_key
from sieve.core.selection import Candidates, ranking_scores, select
from sieve.core.strategies import margin, random_scores, ranking

ALWAYS_RANKED: tuple[str, ...] = REGISTRY.always_ranked
"""Strategies every refresh ranks: they all come from the one predict_proba pass it needs anyway.
Others are ranked for a pool once it uses them (its default, or asked for by a query)."""


@dataclass(frozen=True)
class RankRequest:
    """What one refresh ranks. `features` is an array, or a text pool's CSR matrix; `labels` are the
    labels of `labeled_rows`, in order. `seed` and `version` (the pool's) seed every random stream, so a
    re-run produces the very same orders. With `model` given (fitted on these labels) nothing is fitted.
    `horizon` is the size of a batch strategy's batch; `eval_rows` are neither trained on nor ranked.
    A sharded refresh passes the `proba` its shards computed with `model` and the orders they `ranked`
    (core/sharding.py): those are used as they are."""

    features: object
    labeled_rows: np.ndarray
    labels: list[str]
    spec: dict
    seed: int
    version: int
    model: object | None = None
    strategies: tuple[str, ...] = ALWAYS_RANKED
    horizon: int = 256
    featurizer: dict | None = None
    eval_rows: np.ndarray | None = None
    registry: Registry = REGISTRY
    proba: np.ndarray | None = None
    ranked: dict[str, tuple[np.ndarray, np.ndarray]] | None = None


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


def is_cold(labels) -> bool:
    """Fewer than two labeled classes: there is no model to fit (a cold start)."""
    return len(set(labels)) < 2


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


def fit_model(request: RankRequest):
    """The pool's estimator fitted on the request's labeled rows, seeded by the pool."""
    r = request
    return fit(r.features, r.labeled_rows, r.labels, r.spec, random_state=r.seed, featurizer=r.featurizer)


def rank_pool(request: RankRequest) -> Rankings:
    """Fits (unless the request carries a model for its labels) and orders every unlabeled row for each
    of the requested strategies (random always included).

    A batch strategy orders its batch of `horizon` rows first (so a query for k <= horizon gets the
    first k of that batch; consecutive queries get consecutive slices of it), then the rest by margin.
    With fewer than two classes there is no model: every strategy that needs one starts with a diverse
    batch (k-means++ over the features) and goes on in random order, and the result says it is a
    cold start.
    """
    r = request
    features, labeled_rows, labels, model = r.features, r.labeled_rows, r.labels, r.model
    n_items = features.shape[0]
    rows = unlabeled_rows(n_items, labeled_rows, np.zeros(0, dtype=np.int64) if r.eval_rows is None else r.eval_rows)
    strategies = dict.fromkeys([BASELINE, *r.strategies])
    unknown = [s for s in strategies if s not in r.registry]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}")

    def rng(stream: str) -> np.random.Generator:
        # Seeded by the pool, its version and the stream's name (not its place in a list): a re-run job
        # produces the very same orders, and a strategy's picks do not move when others are added.
        return np.random.default_rng([r.seed, r.version, stream_key(stream)])

    random_order = _order(rows, random_scores(len(rows), rng(BASELINE)))
    orders = {BASELINE: random_order}
    cold = is_cold(labels)
    started = fitted = time.perf_counter()
    if cold:
        model, proba = None, None
    else:
        if model is None:
            model = fit_model(r)
        fitted = time.perf_counter()
        proba = predict_proba(model, features) if r.proba is None else r.proba
    ranked = {} if cold or r.ranked is None else r.ranked
    cold_order = margin_order = None
    for name in strategies:
        if name == BASELINE:
            continue
        if name in ranked:
            orders[name] = ranked[name]
            continue
        entry = r.registry[name]
        cold_for_it = cold and entry.needs_model
        candidates = Candidates(
            features=features,
            unlabeled=rows,
            labeled=labeled_rows,
            labels=np.asarray(labels),
            proba=proba,
            model=model,
            spec=r.spec,
            rng=rng(COLD_START_STREAM if cold_for_it else name),
        )
        if cold_for_it:
            if cold_order is None:  # the same diverse first batch whatever the strategy
                cold_order = _head_first(select(name, candidates, r.horizon, r.registry), random_order[0])
            orders[name] = cold_order
        elif entry.kind == BATCH:
            if margin_order is None:  # margin's own ranking when it was made already: the same order
                margin_order = orders["margin"][0] if "margin" in orders else _order(rows, margin(proba[rows]))[0]
            orders[name] = _head_first(select(name, candidates, r.horizon, r.registry), margin_order)
        else:
            orders[name] = _order(rows, ranking_scores(name, candidates, r.registry))
    return Rankings(
        cold_start=cold,
        model=model,
        classes=[] if cold else [str(c) for c in model.classes_],
        proba=proba,
        orders=orders,
        fit_seconds=fitted - started,
        score_seconds=time.perf_counter() - fitted,
    )
