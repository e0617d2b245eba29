"""What each model version leaves behind: its labels, metrics, agreement with the previous model, times."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sieve.core import estimate, evaluation
from sieve.core.stopping import Round, StoppingPolicy, choose_stop_set, cohen_kappa, recommendation


@dataclass(frozen=True)
class Review:
    """A model version's history entry, and what the pool keeps for the next one."""

    entry: dict
    model_stop: dict
    """The recommendation of the rules that depend on models (target, plateau), for the pool's status."""
    stop_rows: np.ndarray
    stop_labels: list[str]
    """This model's predictions on the stop set, for the next version's kappa."""


@dataclass(frozen=True)
class Labeled:
    """A pool's labels as one refresh read them: training rows and evaluation rows, as JSON texts."""

    rows: np.ndarray
    labels: list[str]
    eval_rows: np.ndarray
    eval_labels: list[str]
    eval_source: str = evaluation.EVAL
    """evaluation.AUDIT when every evaluation item is an audit item (drawn by a query), else EVAL."""


def as_round(entry: dict) -> Round:
    return Round(
        n_labels=entry["n_labels"],
        metrics=entry.get("metrics") or {},
        kappa_with_previous=entry.get("kappa_with_previous"),
        estimate=entry.get("estimate"),
    )


def _rounds(entries: list[dict]) -> list[Round]:
    return [as_round(e) for e in sorted(entries, key=lambda e: e["model_version"])]


def model_stop(policy: StoppingPolicy, entries: list[dict]) -> dict:
    """The recommendation of the rules that depend on models (target, plateau) over history entries in any
    order: what a pool keeps beside its policy. The budget is left out, as it depends on the live label
    count and is added when the recommendation is read."""
    return recommendation(policy.without_budget(), _rounds(entries))


@dataclass(frozen=True)
class ModelRun:
    """A model version as one refresh has it: its classes, its probabilities on every row, its times."""

    model_version: int
    classes: list[str]
    proba: np.ndarray
    fit_seconds: float
    score_seconds: float
    reused: bool
    """The model of this version was fitted by an earlier refresh (only items or evaluation labels
    changed), so its fit time and kappa are kept from the entry that refresh wrote."""


@dataclass(frozen=True)
class PoolData:
    """The rows and labels the model was fitted and is evaluated on, and how to fit another like it."""

    features: np.ndarray
    labeled: Labeled
    unlabeled: np.ndarray
    spec: dict
    seed: int
    featurizer: dict | None = None


@dataclass(frozen=True)
class Past:
    """What the pool keeps from earlier versions, and its stopping policy."""

    history: list[dict]
    stop_rows: np.ndarray | None
    previous_stop: tuple[int, list[str]] | None
    policy: StoppingPolicy


def review(run: ModelRun, data: PoolData, past: Past) -> Review:
    """Evaluates a model (on the evaluation items, else by cross-validation), compares its predictions on
    the stop set with the previous version's, and applies the stopping rules to the whole history."""
    model_version, classes, proba, labeled = run.model_version, run.classes, run.proba, data.labeled
    stop_rows, previous_stop = past.stop_rows, past.previous_stop
    started = time.perf_counter()
    earlier = {entry["model_version"]: entry for entry in past.history}
    same = earlier.get(model_version)  # an earlier refresh of the same model version
    if len(labeled.eval_rows):
        metrics = evaluation.on_eval_items(
            proba[labeled.eval_rows], np.asarray(classes), labeled.eval_labels, labeled.eval_source
        )
    elif same is not None and (same.get("metrics") or {}).get("source") == evaluation.CROSS_VALIDATION:
        metrics = same.get("metrics")  # the same labels give the same estimate
    else:
        metrics = evaluation.cross_validated(
            data.features,
            labeled.rows,
            labeled.labels,
            data.spec,
            data.seed,
            fit_seconds=run.fit_seconds,
            featurizer=data.featurizer,
        )
    if stop_rows is None:
        stop_rows = choose_stop_set(data.unlabeled, data.seed)
    stop_labels = [classes[i] for i in proba[stop_rows].argmax(axis=1)] if len(stop_rows) else []
    if same is not None:
        kappa = same.get("kappa_with_previous")
    elif (
        previous_stop is not None
        and previous_stop[0] < model_version
        and len(previous_stop[1]) == len(stop_labels)
        and stop_labels
    ):
        kappa = cohen_kappa(previous_stop[1], stop_labels)
    else:
        kappa = None
    entry = {
        "model_version": model_version,
        "n_labels": len(labeled.rows),
        "n_eval": len(labeled.eval_rows),
        "metrics": metrics,
        "estimate": estimate.of_metrics(metrics),
        "kappa_with_previous": kappa,
        "stop_set_size": len(stop_rows),
        "fit_seconds": same["fit_seconds"] if run.reused and same is not None else round(run.fit_seconds, 6),
        "score_seconds": round(run.score_seconds, 6),
        "eval_seconds": round(time.perf_counter() - started, 6),
        "finished_at": time.time(),
    }
    entries = [e for v, e in earlier.items() if v < model_version] + [entry]
    entry["stop"] = recommendation(past.policy, _rounds(entries))
    return Review(
        entry=entry, model_stop=model_stop(past.policy, entries), stop_rows=stop_rows, stop_labels=stop_labels
    )
