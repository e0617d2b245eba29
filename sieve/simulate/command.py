"""`sieve simulate`: checks the options, runs the simulation, writes results.json and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sieve.core.errors import InvalidInput
from sieve.core.estimators import normalize_model_spec
from sieve.core.selection import ALL_STRATEGIES
from sieve.simulate.datasets import load_dataset
from sieve.simulate.plot import plot_curves
from sieve.simulate.protocol import TEST_SHARE
from sieve.simulate.results import BASELINE, table
from sieve.simulate.runner import Plan, simulate

DEFAULT_PARAMS = {"logistic_regression": {"max_iter": 1000}}
"""Params used when --model-params is not given: enough iterations that standardized data converges."""


def _strategies(text: str | None) -> tuple[str, ...]:
    names = [s.strip() for s in (text or ",".join(ALL_STRATEGIES)).split(",") if s.strip()]
    if BASELINE not in names:
        click.echo(f"adding {BASELINE!r}: every strategy is compared with it")
        names.insert(0, BASELINE)
    return tuple(dict.fromkeys(names))


def _rates(text: str | None) -> tuple[float, ...]:
    try:
        return tuple(float(r) for r in (text or "").split(",") if r.strip())
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of rates: {text!r}", param_hint="--audit") from None


def _spec(model: str, params: str | None) -> dict:
    try:
        parsed = DEFAULT_PARAMS.get(model, {}) if params is None else json.loads(params)
        return normalize_model_spec({"type": model, "params": parsed})
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--model-params") from None
    except InvalidInput as exc:
        raise click.BadParameter(f"{exc} ({exc.field})", param_hint="--model") from None


def run_command(
    dataset,
    label_column,
    strategies,
    batch_size,
    budget,
    init_per_class,
    seeds,
    model,
    model_params,
    out,
    url,
    api_key,
    jobs,
    audit=None,
    test_share=None,
    target=None,
) -> dict:
    if jobs == 0:
        raise click.BadParameter(
            "0 runs nothing: give a number of processes, or -1 for one per core", param_hint="--jobs"
        )
    try:
        data = load_dataset(dataset, label_column)
        plan = Plan(
            strategies=_strategies(strategies),
            spec=_spec(model, model_params),
            batch_size=batch_size,
            budget=budget,
            init_per_class=init_per_class,
            seeds=seeds,
            url=url,
            api_key=api_key,
            audit_rates=_rates(audit),
            test_share=TEST_SHARE if test_share is None else test_share,
            target=target,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    results = simulate(data, plan, jobs=jobs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plot_curves(results, out / "learning_curves.png")
    click.echo(table(results))
    click.echo(f"wrote {out / 'results.json'} and {out / 'learning_curves.png'}")
    return results
