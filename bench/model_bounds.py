"""What the model bounds allow at most: fit time and pickled size of the most expensive spec of each model type,
and what validating a spec costs, huge numbers included.

    PYTHONPATH=$PWD python bench/model_bounds.py [--labels 3000 10000] [--dim 64] [--classes 2] [--only sgd]

Forests and naive Bayes get random labels, which grow trees as large as their bounds let them; linear models
get linearly separable ones, which keep their solvers iterating to max_iter. One BLAS thread, as in a worker.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import pickle  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from sieve.core.errors import InvalidInput  # noqa: E402
from sieve.core.estimators import build_estimator, normalize_model_spec  # noqa: E402

MOST_EXPENSIVE = {
    "logistic_regression lbfgs": {
        "type": "logistic_regression",
        "params": {"solver": "lbfgs", "max_iter": 1000, "tol": 0, "C": 1e6},
    },
    "logistic_regression newton-cg": {
        "type": "logistic_regression",
        "params": {"solver": "newton-cg", "max_iter": 1000, "tol": 0, "C": 1e6},
    },
    "logistic_regression saga": {
        "type": "logistic_regression",
        "params": {"solver": "saga", "l1_ratio": 0.5, "max_iter": 100, "tol": 0, "C": 1e6},
    },
    "sgd_classifier tol null": {
        "type": "sgd_classifier",
        "params": {"max_iter": 100, "tol": None, "penalty": "elasticnet", "average": True},
    },
    "sgd_classifier tol 1e-4": {
        "type": "sgd_classifier",
        "params": {"max_iter": 1000, "tol": 1e-4, "n_iter_no_change": 100, "penalty": "elasticnet", "average": True},
    },
    "random_forest": {
        "type": "random_forest",
        "params": {
            "n_estimators": 50,
            "max_leaf_nodes": 1000,
            "max_features": 8,
            "criterion": "log_loss",
            "bootstrap": False,
        },
    },
    "random_forest bootstrap": {
        "type": "random_forest",
        "params": {
            "n_estimators": 100,
            "max_leaf_nodes": 1000,
            "max_features": 8,
            "criterion": "log_loss",
            "max_samples": 100_000,
        },
    },
    "random_forest all features": {
        "type": "random_forest",
        "params": {
            "n_estimators": 6,
            "max_leaf_nodes": 1000,
            "max_features": 64,
            "criterion": "log_loss",
            "bootstrap": False,
        },
    },
    "random_forest (defaults)": {"type": "random_forest", "params": {}},
    "gaussian_nb": {"type": "gaussian_nb", "params": {}},
}

VALIDATED = {
    "max_leaf_nodes 10^7": {"type": "random_forest", "params": {"max_leaf_nodes": 10**7}},
    "max_leaf_nodes 10^18": {"type": "random_forest", "params": {"max_leaf_nodes": 10**18}},
    "max_leaf_nodes 10^30": {"type": "random_forest", "params": {"max_leaf_nodes": 10**30}},
    "sgd max_iter 100000 tol null": {"type": "sgd_classifier", "params": {"max_iter": 100_000, "tol": None}},
    "forest n_estimators 500": {"type": "random_forest", "params": {"n_estimators": 500}},
    "most expensive forest": MOST_EXPENSIVE["random_forest"],
    "most expensive sgd": MOST_EXPENSIVE["sgd_classifier tol 1e-4"],
}


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fits(labels: list[int], dim: int, classes: int, only: str) -> None:
    print(f"fit of the most expensive spec, {dim} features, {classes} classes, one thread")
    print(f"{'model':32} {'labels':>7} {'fit s':>8} {'pickled MB':>11}")
    rng = np.random.default_rng(0)
    for name, spec in MOST_EXPENSIVE.items():
        if only not in name:
            continue
        normalized = normalize_model_spec(spec)
        for n in labels:
            X = rng.normal(size=(n, dim))
            if spec["type"] in ("logistic_regression", "sgd_classifier"):
                scores = X @ rng.normal(size=(dim, classes))
                y = scores.argmax(axis=1)
            else:
                y = rng.integers(0, classes, size=n)
            model = build_estimator(normalized, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence on random labels
                started = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - started
            print(f"{name:32} {n:>7} {seconds:>8.2f} {len(pickle.dumps(model)) / 1e6:>11.1f}", flush=True)


def validations() -> None:
    print("\nvalidating a spec (normalize_model_spec), 20 runs each")
    print(f"{'spec':32} {'answer':>8} {'ms each':>8} {'RSS growth MB':>14}")
    for name, spec in VALIDATED.items():
        before = rss_mb()
        started = time.perf_counter()
        for _ in range(20):
            try:
                normalize_model_spec(spec)
                answer = "accepted"
            except InvalidInput:
                answer = "422"
        ms = (time.perf_counter() - started) / 20 * 1000
        print(f"{name:32} {answer:>8} {ms:>8.1f} {rss_mb() - before:>14.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--skip-fits", action="store_true")
    parser.add_argument("--only", default="", help="fit only the models whose name contains this")
    args = parser.parse_args()
    validations()
    if not args.skip_fits:
        print()
        fits(args.labels, args.dim, args.classes, args.only)


if __name__ == "__main__":
    main()
