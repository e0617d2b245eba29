"""A whitelist of scikit-learn classifiers with predict_proba, built from a JSON model spec."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sieve.core import model_params
from sieve.core.errors import InvalidInput

MODEL_TYPES: dict[str, type] = {
    "logistic_regression": LogisticRegression,
    "sgd_classifier": SGDClassifier,
    "random_forest": RandomForestClassifier,
    "gaussian_nb": GaussianNB,
}
DEFAULT_MODEL_TYPE = "logistic_regression"

# sklearn's SGD default (hinge) has no predict_proba, which every query strategy needs.
SIEVE_DEFAULT_PARAMS: dict[str, dict] = {"sgd_classifier": {"loss": "log_loss"}}
SGD_PROBA_LOSSES: tuple[str, ...] = ("log_loss", "modified_huber")

# The service owns parallelism, logging, refit semantics and seeding (the pool's seed).
FORBIDDEN_PARAMS: tuple[str, ...] = ("n_jobs", "verbose", "warm_start", "random_state")

# Params whose valid values depend on the real data's classes or features: the probe's toy
# data cannot judge them, so it uses sklearn's defaults and leaves them to the real fit.
_DATA_SHAPED_PARAMS: tuple[str, ...] = ("priors", "class_weight", "monotonic_cst")
# Sizes the probe fits with instead of the client's (bounded ones, at most): a bigger number changes
# nothing about whether a combination is valid, only how much the probe would allocate and run
# (max_leaf_nodes reserves its nodes up front; an integer max_samples is how many rows each tree draws).
_PROBE_CAPS: dict[str, int] = {
    "n_estimators": 2,
    "max_iter": 5,
    "max_leaf_nodes": 8,
    "max_depth": 5,
    "max_samples": 10,
    "n_iter_no_change": 2,
}

_SPEC_KEYS = ("type", "params", "standardize")
_PARAM_NAME_IN_MESSAGE = re.compile(r"The '(\w+)' parameter")


def _is_json_value(value) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_value(v) for k, v in value.items())
    return False


def _model_class(model_type) -> type:
    cls = MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None
    if cls is None:
        raise InvalidInput(
            f"unknown model type {model_type!r}; valid types: {', '.join(MODEL_TYPES)}",
            field="model.type",
        )
    return cls


def _probe_data() -> tuple[np.ndarray, np.ndarray]:
    # Separable, balanced and just large enough that SGD's early-stopping split holds both classes.
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    X = rng.normal(size=(20, 2)) + 3.0 * y[:, None]
    return X, y


def _probe_fit(estimator) -> None:
    """Fits a copy on toy data, sized down, so that scikit-learn judges every value and combination (its
    errors name the parameter) at the same few milliseconds whatever the spec's numbers."""
    probe = clone(estimator)
    params = probe.get_params()
    caps = {
        name: cap
        for name, cap in _PROBE_CAPS.items()
        if isinstance(params.get(name), int) and not isinstance(params[name], bool) and params[name] > cap
    }
    resets = {name: None for name in _DATA_SHAPED_PARAMS if name in params}
    probe.set_params(**caps, **resets)
    X, y = _probe_data()
    with warnings.catch_warnings():
        # Convergence and deprecation chatter on toy data says nothing about validity.
        warnings.simplefilter("ignore")
        try:
            probe.fit(X, y)
        except (ValueError, TypeError) as exc:
            # sklearn's InvalidParameterError is both, and names the parameter.
            match = _PARAM_NAME_IN_MESSAGE.search(str(exc))
            field = f"model.params.{match.group(1)}" if match else "model.params"
            prefix = "" if match else "invalid parameter combination: "
            raise InvalidInput(f"{prefix}{exc}", field=field) from None
        except (MemoryError, ArithmeticError) as exc:
            raise InvalidInput(
                f"these parameters cannot be fitted: {type(exc).__name__}", field="model.params"
            ) from None
    if not hasattr(probe, "predict_proba"):
        raise InvalidInput("this configuration has no predict_proba", field="model.params")


def normalize_model_spec(spec: dict | None) -> dict:
    """Validate a client's model spec and return it as {"type": str, "params": dict}, plus
    "standardize": True when the features are to be standardized before the model sees them.

    Raises InvalidInput naming the field at fault.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise InvalidInput("model must be an object with 'type' and 'params'", field="model")
    for key in spec:
        if key not in _SPEC_KEYS:
            raise InvalidInput(f"unknown model key {key!r}; valid keys: {', '.join(_SPEC_KEYS)}", field=f"model.{key}")
    standardize = spec.get("standardize", False)
    if not isinstance(standardize, bool):
        raise InvalidInput("model.standardize must be true or false", field="model.standardize")

    model_type = spec.get("type")
    if model_type is None:
        model_type = DEFAULT_MODEL_TYPE
    cls = _model_class(model_type)

    params = spec.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("model.params must be an object", field="model.params")

    accepted = cls().get_params()
    for name, value in params.items():
        field = f"model.params.{name}"
        if name in FORBIDDEN_PARAMS:
            reason = "the pool's seed is used" if name == "random_state" else "it is managed by Sieve"
            raise InvalidInput(f"parameter {name!r} may not be set: {reason}", field=field)
        if name not in accepted:
            valid = ", ".join(sorted(set(accepted) - set(FORBIDDEN_PARAMS)))
            raise InvalidInput(f"unknown parameter {name!r} for {model_type}; valid: {valid}", field=field)
        if not _is_json_value(value):
            raise InvalidInput(f"parameter {name!r} must be a JSON value", field=field)
        if model_type == "sgd_classifier" and name == "loss" and value not in SGD_PROBA_LOSSES:
            raise InvalidInput(
                f"loss {model_params.shown(value)} has no predict_proba; use one of: {', '.join(SGD_PROBA_LOSSES)}",
                field=field,
            )
        model_params.check(model_type, name, value)

    params = {**SIEVE_DEFAULT_PARAMS.get(model_type, {}), **params}
    model_params.check_together(model_type, params)
    estimator = cls(**params)

    # The scaler has nothing to configure, so probing the model alone judges the whole pipeline.
    _probe_fit(estimator)
    # Left out when false, so that specs stored before the option existed read the same.
    return {"type": model_type, "params": params, **({"standardize": True} if standardize else {})}


def build_estimator(spec: dict, random_state: int | None):
    """An unfitted estimator for a normalized spec, seeded with `random_state` when it takes one.

    With "standardize", a Pipeline that scales each feature to zero mean and unit variance (learned
    from the labeled rows at each fit) before the model.
    """
    model_type = spec.get("type") or DEFAULT_MODEL_TYPE
    cls = _model_class(model_type)
    params = {**SIEVE_DEFAULT_PARAMS.get(model_type, {}), **(spec.get("params") or {})}
    estimator = cls(**model_params.within_bounds(model_type, params))
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=random_state)
    if spec.get("standardize"):
        return Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator
