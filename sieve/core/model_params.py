"""What each parameter of each whitelisted model may be: one table, checked before scikit-learn sees a value.

Every number a client may send has a range here, chosen so that neither validating a spec nor fitting
the model costs in proportion to the number: fit time and model size are bounded by the spec, and only
the pool's data (labels, features, classes) makes them grow. A parameter missing from the table is
refused, so a scikit-learn upgrade that adds one cannot open a way around the bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sieve.core.errors import InvalidInput
from sieve.limits import (
    MAX_CLASSES,
    MAX_FEATURE_DIM,
    MAX_FOREST_SPLIT_FEATURES,
    MAX_FOREST_TREES,
    MAX_MODEL_ITERATIONS,
    MAX_TREE_LEAVES,
)

INT32_MAX = 2**31 - 1
"""No parameter takes a larger integer, nested ones (weights, priors) included."""

SGD_LOOSE_TOL = 1e-4
SGD_LOOSE_TOL_MAX_ITER = 100
"""SGD stops once an epoch improves its loss by less than tol; below SGD_LOOSE_TOL (or with tol null) it runs
about every epoch of max_iter, one pass over every labeled row per class each: 42 s for 1,000 on 10,000 rows of
64 features and 10 classes."""

SLOW_EPOCH_SOLVERS = ("sag", "saga")
SLOW_EPOCH_MAX_ITER = 100
"""sag and saga pass over every labeled row per iteration (17 s for 1,000 on 10,000 rows of 64 features):
sklearn's default."""


@dataclass(frozen=True)
class Number:
    """Numbers from `low` (excluded if `low_open`) to `high`; whole numbers only if `integer`."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False

    def admits(self, value) -> bool:
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high

    def describe(self) -> str:
        if self.integer:
            return f"an integer from {_fmt(self.low)} to {_fmt(self.high)}"
        return f"a number in {'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}]"


@dataclass(frozen=True)
class Param:
    """What one parameter takes. An integer is read against the integer ranges when there are any (sklearn
    counts with ints and takes floats as fractions); other numbers against the fractional ones."""

    numbers: tuple[Number, ...] = ()
    words: tuple = ()
    """Strings and booleans it may take, beside numbers; () when it takes none."""
    null: bool = False
    weights: Number | None = None
    """It may be an object of at most MAX_CLASSES class → weight."""
    sequence: Number | None = None
    max_items: int = 0
    """It may be a list of at most max_items such numbers."""

    def describe(self) -> str:
        kinds = [repr(w).lower() if isinstance(w, bool) else repr(w) for w in self.words]
        kinds += [n.describe() for n in self.numbers]
        if self.weights:
            kinds.append(f"an object of class → weight ({self.weights.describe()})")
        if self.sequence:
            kinds.append(f"a list of at most {self.max_items:,} numbers, each {self.sequence.describe()}")
        if self.null:
            kinds.append("null")
        return kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _int(low, high) -> Number:
    return Number(low, high, integer=True)


BOOL = Param(words=(True, False))
CLASS_WEIGHT = Param(words=("balanced",), null=True, weights=Number(0, 1e6))
TOL = Param(numbers=(Number(0, 10),))
L1_RATIO = Param(numbers=(Number(0, 1),), null=True)

PARAMS: dict[str, dict[str, Param]] = {
    "logistic_regression": {
        "C": Param(numbers=(Number(0, 1e6, low_open=True),)),
        "class_weight": CLASS_WEIGHT,
        "dual": BOOL,
        "fit_intercept": BOOL,
        "intercept_scaling": Param(numbers=(Number(0, 1e6, low_open=True),)),
        "l1_ratio": L1_RATIO,
        "max_iter": Param(numbers=(_int(0, MAX_MODEL_ITERATIONS),)),
        "penalty": Param(words=("l1", "l2", "elasticnet"), null=True),
        # Not newton-cholesky: its Hessian holds (features x classes)² floats, 80 GB at 10,000 features and
        # 10 classes, which no bound on the spec can cap.
        "solver": Param(words=("lbfgs", "liblinear", "newton-cg", "sag", "saga")),
        "tol": TOL,
    },
    "sgd_classifier": {
        "alpha": Param(numbers=(Number(0, 100),)),
        "average": Param(words=(True, False), numbers=(_int(1, 1_000_000_000),)),
        "class_weight": CLASS_WEIGHT,
        "early_stopping": BOOL,
        "epsilon": Param(numbers=(Number(0, 100),)),
        "eta0": Param(numbers=(Number(0, 10, low_open=True),)),
        "fit_intercept": BOOL,
        "l1_ratio": L1_RATIO,
        "learning_rate": Param(words=("optimal", "constant", "invscaling", "adaptive", "pa1", "pa2")),
        "loss": Param(words=("log_loss", "modified_huber")),
        "max_iter": Param(numbers=(_int(1, MAX_MODEL_ITERATIONS),)),
        "n_iter_no_change": Param(numbers=(_int(1, 100),)),
        "penalty": Param(words=("l1", "l2", "elasticnet"), null=True),
        "power_t": Param(numbers=(Number(0, 2),)),
        "shuffle": BOOL,
        "tol": Param(numbers=TOL.numbers, null=True),
        "validation_fraction": Param(numbers=(Number(0, 0.5, low_open=True),)),
    },
    "random_forest": {
        "bootstrap": BOOL,
        "ccp_alpha": Param(numbers=(Number(0, 10),)),
        "class_weight": Param(words=("balanced", "balanced_subsample"), null=True, weights=Number(0, 1e6)),
        "criterion": Param(words=("gini", "entropy", "log_loss")),
        "max_depth": Param(numbers=(_int(1, 100),), null=True),
        # A forest's fit time grows with trees x features weighed at each split: an integer max_features is
        # held to MAX_FOREST_SPLIT_FEATURES together with n_estimators (check_together), a fraction to 1/8.
        "max_features": Param(
            words=("sqrt", "log2"), numbers=(_int(1, MAX_FOREST_SPLIT_FEATURES), Number(0, 0.125, low_open=True))
        ),
        "max_leaf_nodes": Param(numbers=(_int(2, MAX_TREE_LEAVES),)),
        # An integer is how many rows each tree draws, whatever the pool's size.
        "max_samples": Param(numbers=(_int(1, 100_000), Number(0, 1, low_open=True)), null=True),
        "min_impurity_decrease": Param(numbers=(Number(0, 10),)),
        "min_samples_leaf": Param(numbers=(_int(1, 1_000_000), Number(0, 0.5, low_open=True))),
        "min_samples_split": Param(numbers=(_int(2, 1_000_000), Number(0, 1, low_open=True))),
        "min_weight_fraction_leaf": Param(numbers=(Number(0, 0.5),)),
        "monotonic_cst": Param(null=True, sequence=_int(-1, 1), max_items=MAX_FEATURE_DIM),
        "n_estimators": Param(numbers=(_int(1, MAX_FOREST_TREES),)),
        "oob_score": BOOL,
    },
    "gaussian_nb": {
        "priors": Param(null=True, sequence=Number(0, 1), max_items=MAX_CLASSES),
        "var_smoothing": Param(numbers=(Number(0, 1),)),
    },
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _oversized_int(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > INT32_MAX
    if isinstance(value, list):
        return any(_oversized_int(v) for v in value)
    if isinstance(value, dict):
        return any(_oversized_int(v) for v in value.values())
    return False


def _admits_number(param: Param, value) -> bool:
    ranges = [n for n in param.numbers if n.integer] if isinstance(value, int) else []
    if not ranges:
        ranges = [n for n in param.numbers if not n.integer]
    return any(n.admits(value) for n in ranges)


def _admits(param: Param, value) -> bool:
    if value is None:
        return param.null
    if _is_number(value):
        return math.isfinite(value) and _admits_number(param, value)
    if isinstance(value, (str, bool)):
        return any(value == w and type(value) is type(w) for w in param.words)
    if isinstance(value, dict) and param.weights:
        return len(value) <= MAX_CLASSES and all(_is_number(v) and param.weights.admits(v) for v in value.values())
    if isinstance(value, list) and param.sequence:
        return len(value) <= param.max_items and all(
            _is_number(v) and (not param.sequence.integer or isinstance(v, int)) and param.sequence.admits(v)
            for v in value
        )
    return False


def shown(value) -> str:
    """A client's value in a message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(model_type: str, name: str, value) -> None:
    """Raises InvalidInput naming model.params.<name> unless the table admits `value` for it."""
    field = f"model.params.{name}"
    param = PARAMS[model_type].get(name)
    if param is None:
        raise InvalidInput(f"parameter {name!r} of {model_type} is not supported", field=field)
    if _oversized_int(value):
        raise InvalidInput(f"{name} must be {param.describe()}; integers beyond ±{INT32_MAX} are refused", field=field)
    if not _admits(param, value):
        raise InvalidInput(f"{name} must be {param.describe()}, got {shown(value)}", field=field)


def _sgd_runs_every_epoch(params: dict) -> bool:
    tol = params.get("tol", 1e-3)  # sklearn's default
    return tol is None or tol < SGD_LOOSE_TOL


def _forest_trees(params: dict) -> int:
    """Trees, counted twice without bootstrap: each then fits every labeled row, at about 3 times the cost
    of a bootstrap tree on 10,000 labels."""
    return params.get("n_estimators", 100) * (2 if params.get("bootstrap") is False else 1)


def _forest_split_features(params: dict) -> int | None:
    features = params.get("max_features")
    if isinstance(features, int) and not isinstance(features, bool):
        return _forest_trees(params) * features
    return None


def check_together(model_type: str, params: dict) -> None:
    """Bounds that depend on another parameter."""
    if (
        model_type == "logistic_regression"
        and params.get("solver") in SLOW_EPOCH_SOLVERS
        and params.get("max_iter", 100) > SLOW_EPOCH_MAX_ITER
    ):
        raise InvalidInput(
            f"max_iter must be at most {SLOW_EPOCH_MAX_ITER} with solver {params['solver']!r} "
            f"(each iteration is a pass over every labeled row), got {params['max_iter']}",
            field="model.params.max_iter",
        )
    if (
        model_type == "sgd_classifier"
        and _sgd_runs_every_epoch(params)
        and params.get("max_iter", 1000) > SGD_LOOSE_TOL_MAX_ITER
    ):
        raise InvalidInput(
            f"max_iter must be at most {SGD_LOOSE_TOL_MAX_ITER} when tol is null or below "
            f"{SGD_LOOSE_TOL:g} (every epoch then runs), got {params.get('max_iter', 1000)}",
            field="model.params.max_iter",
        )
    if model_type != "random_forest":
        return
    if params.get("bootstrap") is False and _forest_trees(params) > MAX_FOREST_TREES:
        raise InvalidInput(
            f"n_estimators must be at most {MAX_FOREST_TREES // 2} with bootstrap false (each tree "
            f"then fits every labeled row), got {params.get('n_estimators', 100)}",
            field="model.params.n_estimators",
        )
    work = _forest_split_features(params)
    if work is not None and work > MAX_FOREST_SPLIT_FEATURES:
        raise InvalidInput(
            f"n_estimators x max_features must be at most {MAX_FOREST_SPLIT_FEATURES:,} (the default "
            f"forest's on 64 features), half that with bootstrap false; got "
            f"{params.get('n_estimators', 100)} x {params['max_features']}",
            field="model.params.max_features",
        )


def within_bounds(model_type: str, params: dict) -> dict:
    """`params` with any number above its range lowered to the range's top and any word it no longer allows
    left to scikit-learn's default, so that a spec stored before a bound existed is fitted within it rather
    than failing or running unbounded; and a forest's leaves capped
    when the spec leaves them free (sklearn then grows as many leaves as distinct labeled rows)."""
    table = PARAMS.get(model_type, {})
    bounded = dict(params)
    for name, value in params.items():
        param = table.get(name)
        if param is not None and isinstance(value, str) and value not in param.words:
            # A word the table no longer allows (newton-cholesky's Hessian): scikit-learn's default instead.
            del bounded[name]
            continue
        if param is None or not _is_number(value) or _admits_number(param, value):
            continue
        if isinstance(value, int) and any(n.integer for n in param.numbers):
            ranges = [n for n in param.numbers if n.integer]
        else:
            ranges = [n for n in param.numbers if not n.integer]
        tops = [n.high for n in ranges if value > n.high]
        if tops:
            top = max(tops)
            bounded[name] = int(top) if isinstance(value, int) else top
    if model_type == "random_forest" and bounded.get("max_leaf_nodes") is None:
        bounded["max_leaf_nodes"] = MAX_TREE_LEAVES
    if model_type == "logistic_regression" and bounded.get("solver") in SLOW_EPOCH_SOLVERS:
        bounded["max_iter"] = min(bounded.get("max_iter", 100), SLOW_EPOCH_MAX_ITER)
    if model_type == "sgd_classifier" and _sgd_runs_every_epoch(bounded):
        bounded["max_iter"] = min(bounded.get("max_iter", 1000), SGD_LOOSE_TOL_MAX_ITER)
    if model_type == "random_forest" and _forest_trees(bounded) > MAX_FOREST_TREES:
        bounded["n_estimators"] = MAX_FOREST_TREES // 2
    work = _forest_split_features(bounded) if model_type == "random_forest" else None
    if work is not None and work > MAX_FOREST_SPLIT_FEATURES:
        bounded["max_features"] = max(1, MAX_FOREST_SPLIT_FEATURES // _forest_trees(bounded))
    return bounded
