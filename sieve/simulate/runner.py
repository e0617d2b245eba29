"""Runs every seed and strategy, in parallel, in process or against a live Sieve, and sums them up."""

from __future__ import annotations

from dataclasses import dataclass

from joblib import Parallel, delayed
from tqdm import tqdm

from sieve.client import Client
from sieve.core.selection import ALL_STRATEGIES
from sieve.core.stopping import MAX_AUDIT_RATE
from sieve.simulate.datasets import Dataset
from sieve.simulate.local import run_local
from sieve.simulate.protocol import TEST_SHARE, full_pool_accuracy, prepare
from sieve.simulate.remote import run_remote
from sieve.simulate.results import BASELINE, summarize


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
    audit_rates: tuple[float, ...] = ()
    """Each strategy but random also runs with audit items at each of these rates (in process only)."""
    test_share: float = TEST_SHARE
    target: float | None = None
    """The target rule's accuracy; None: results.default_target."""

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in ALL_STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"unknown strategies {', '.join(unknown)}; valid: {', '.join(ALL_STRATEGIES)}")
        for name in ("batch_size", "budget", "init_per_class", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        if any(not 0 < rate <= MAX_AUDIT_RATE for rate in self.audit_rates):
            raise ValueError(f"audit rates must lie in (0, {MAX_AUDIT_RATE}]")
        if self.audit_rates and self.url:
            raise ValueError("audit items are simulated in process only: leave out --url or --audit")
        if not 0 < self.test_share < 1:
            raise ValueError("test-share must lie between 0 and 1")

    def settings(self) -> dict:
        return {
            "strategies": list(self.strategies),
            "model": self.spec,
            "batch_size": self.batch_size,
            "budget": self.budget,
            "init_per_class": self.init_per_class,
            "seeds": list(range(self.seeds)),
            "mode": "http" if self.url else "in-process",
            "audit_rates": list(self.audit_rates),
            "test_share": self.test_share,
        }

    def audited(self) -> list[tuple[str, float]]:
        return [(s, rate) for rate in self.audit_rates for s in self.strategies if s != BASELINE]


def _task(data: Dataset, plan: Plan, seed: int, strategy: str | None, rate: float = 0.0):
    setup = prepare(data, seed, plan.init_per_class, plan.test_share)
    if strategy is None:
        return seed, None, full_pool_accuracy(setup, plan.spec)
    if rate:
        # The cross-validated estimate is measured once, beside the first rate's estimates.
        first = rate == plan.audit_rates[0]
        trace = run_local(setup, strategy, plan.spec, plan.batch_size, plan.budget, rate, cross_validate=first)
        return seed, (strategy, rate), trace
    if plan.url:
        trace = run_remote(Client(plan.url, plan.api_key), setup, strategy, plan.spec, plan.batch_size, plan.budget)
    else:
        trace = run_local(setup, strategy, plan.spec, plan.batch_size, plan.budget)
    return seed, strategy, trace


def simulate(data: Dataset, plan: Plan, jobs: int = -1, progress: bool = True) -> dict:
    """results.json's content; `jobs` processes run the (seed, strategy) runs, -1 meaning every core."""
    runs = [(s, 0.0) for s in (None, *plan.strategies)] + plan.audited()
    tasks = [(seed, strategy, rate) for seed in range(plan.seeds) for strategy, rate in runs]
    outputs = Parallel(n_jobs=jobs, return_as="generator_unordered")(
        delayed(_task)(data, plan, seed, strategy, rate) for seed, strategy, rate in tasks
    )
    full, traces, audited = {}, {s: {} for s in plan.strategies}, {key: {} for key in plan.audited()}
    for seed, strategy, outcome in tqdm(outputs, total=len(tasks), desc=data.name, unit="run", disable=not progress):
        if strategy is None:
            full[seed] = outcome
        elif isinstance(strategy, tuple):
            audited[strategy][seed] = outcome
        else:
            traces[strategy][seed] = outcome
    first = prepare(data, 0, plan.init_per_class, plan.test_share)
    seeds = range(plan.seeds)
    return summarize(
        data.name,
        len(first.y_pool),
        len(first.y_test),
        [full[s] for s in seeds],
        {name: [runs[s] for s in seeds] for name, runs in traces.items()},
        plan.settings(),
        {key: [runs[s] for s in seeds] for key, runs in audited.items()},
        plan.target,
    )
