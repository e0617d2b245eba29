"""Runs every seed and strategy, in parallel, in process or against a live Sieve, and sums them up."""

from __future__ import annotations

from dataclasses import dataclass

from joblib import Parallel, delayed
from tqdm import tqdm

from sieve.client import Client
from sieve.core.selection import ALL_STRATEGIES
from sieve.simulate.datasets import Dataset
from sieve.simulate.local import run_local
from sieve.simulate.protocol import full_pool_accuracy, prepare
from sieve.simulate.remote import run_remote
from sieve.simulate.results import summarize


@dataclass(frozen=True)
class Plan:
    strategies: tuple[str, ...]
    spec: dict
    batch_size: int = 10
    budget: int = 500
    init_per_class: int = 2
    seeds: int = 10
    url: str | None = None
    api_key: str | None = None

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in ALL_STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"unknown strategies {', '.join(unknown)}; valid: {', '.join(ALL_STRATEGIES)}")
        for name in ("batch_size", "budget", "init_per_class", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")

    def settings(self) -> dict:
        return {
            "strategies": list(self.strategies),
            "model": self.spec,
            "batch_size": self.batch_size,
            "budget": self.budget,
            "init_per_class": self.init_per_class,
            "seeds": list(range(self.seeds)),
            "mode": "http" if self.url else "in-process",
        }


def _task(data: Dataset, plan: Plan, seed: int, strategy: str | None):
    setup = prepare(data, seed, plan.init_per_class)
    if strategy is None:
        return seed, None, full_pool_accuracy(setup, plan.spec)
    if plan.url:
        trace = run_remote(Client(plan.url, plan.api_key), setup, strategy, plan.spec, plan.batch_size, plan.budget)
    else:
        trace = run_local(setup, strategy, plan.spec, plan.batch_size, plan.budget)
    return seed, strategy, trace


def simulate(data: Dataset, plan: Plan, jobs: int = -1, progress: bool = True) -> dict:
    """results.json's content; `jobs` processes run the (seed, strategy) runs, -1 meaning every core."""
    tasks = [(seed, strategy) for seed in range(plan.seeds) for strategy in (None, *plan.strategies)]
    outputs = Parallel(n_jobs=jobs, return_as="generator_unordered")(
        delayed(_task)(data, plan, seed, strategy) for seed, strategy in tasks
    )
    full, traces = {}, {s: {} for s in plan.strategies}
    for seed, strategy, outcome in tqdm(outputs, total=len(tasks), desc=data.name, unit="run", disable=not progress):
        if strategy is None:
            full[seed] = outcome
        else:
            traces[strategy][seed] = outcome
    first = prepare(data, 0, plan.init_per_class)
    seeds = range(plan.seeds)
    return summarize(
        data.name,
        len(first.y_pool),
        len(first.y_test),
        [full[s] for s in seeds],
        {name: [runs[s] for s in seeds] for name, runs in traces.items()},
        plan.settings(),
    )
