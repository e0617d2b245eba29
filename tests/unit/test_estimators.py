"""The model whitelist: specs are normalized, bad ones rejected with the field at fault."""

import resource

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sieve.core.errors import InvalidInput
from sieve.core.estimators import (
    DEFAULT_MODEL_TYPE,
    FORBIDDEN_PARAMS,
    MODEL_TYPES,
    build_estimator,
    normalize_model_spec,
)
from sieve.core.model_params import PARAMS
from sieve.storage.models import UntrustedModel, dump_model, load_model


def _three_class_data():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 15)
    X = rng.normal(size=(45, 4)) + 2.0 * y[:, None]
    return X, y


def _field_of(spec):
    with pytest.raises(InvalidInput) as info:
        normalize_model_spec(spec)
    return info.value.field


def test_whitelist_maps_names_to_sklearn_classes():
    assert MODEL_TYPES == {
        "logistic_regression": LogisticRegression,
        "sgd_classifier": SGDClassifier,
        "random_forest": RandomForestClassifier,
        "gaussian_nb": GaussianNB,
    }
    assert DEFAULT_MODEL_TYPE == "logistic_regression"


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_every_model_type_builds_fits_and_predicts_probabilities(model_type):
    spec = normalize_model_spec({"type": model_type})
    model = build_estimator(spec, random_state=0)
    assert isinstance(model, MODEL_TYPES[model_type])
    X, y = _three_class_data()
    model.fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (45, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_missing_spec_means_default_logistic_regression_with_sklearn_defaults():
    for spec in (None, {}, {"type": None, "params": None}):
        assert normalize_model_spec(spec) == {"type": "logistic_regression", "params": {}}
    model = build_estimator(normalize_model_spec(None), random_state=None)
    assert model.get_params() == LogisticRegression().get_params()
    assert model.C == 1.0


def test_sgd_defaults_to_log_loss_so_it_has_predict_proba():
    spec = normalize_model_spec({"type": "sgd_classifier"})
    assert spec["params"]["loss"] == "log_loss"
    model = build_estimator(spec, random_state=0)
    assert model.loss == "log_loss"
    assert model.alpha == SGDClassifier().alpha


def test_sgd_accepts_modified_huber_loss():
    spec = normalize_model_spec({"type": "sgd_classifier", "params": {"loss": "modified_huber"}})
    assert build_estimator(spec, random_state=0).loss == "modified_huber"


def test_valid_params_are_kept_and_applied():
    spec = normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 20, "max_depth": 5}})
    assert spec == {"type": "random_forest", "params": {"n_estimators": 20, "max_depth": 5}}
    model = build_estimator(spec, random_state=3)
    assert (model.n_estimators, model.max_depth) == (20, 5)


def test_random_state_is_applied_when_the_class_accepts_it():
    for model_type in ("logistic_regression", "sgd_classifier", "random_forest"):
        model = build_estimator(normalize_model_spec({"type": model_type}), random_state=1234)
        assert model.random_state == 1234
    assert not hasattr(build_estimator({"type": "gaussian_nb", "params": {}}, 1234), "random_state")


def test_same_random_state_gives_identical_forests():
    X, y = _three_class_data()
    spec = normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 5}})
    a = build_estimator(spec, random_state=9).fit(X, y).predict_proba(X)
    b = build_estimator(spec, random_state=9).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_unknown_type_is_rejected_listing_valid_types():
    with pytest.raises(InvalidInput, match="logistic_regression") as info:
        normalize_model_spec({"type": "svm"})
    assert info.value.field == "model.type"


def test_non_object_spec_or_params_are_rejected():
    assert _field_of(["logistic_regression"]) == "model"
    assert _field_of({"params": [1, 2]}) == "model.params"
    assert _field_of({"type": "gaussian_nb", "extra": 1}) == "model.extra"


def test_unknown_parameter_is_rejected_with_its_field():
    assert _field_of({"params": {"gamma": 1.0}}) == "model.params.gamma"
    assert _field_of({"type": "gaussian_nb", "params": {"C": 1.0}}) == "model.params.C"


@pytest.mark.parametrize("name, value", [("n_jobs", 4), ("verbose", 1), ("warm_start", True), ("random_state", 0)])
def test_forbidden_parameters_are_rejected(name, value):
    assert _field_of({"type": "random_forest", "params": {name: value}}) == f"model.params.{name}"


def test_random_state_is_forbidden_even_for_classes_without_one():
    assert _field_of({"type": "gaussian_nb", "params": {"random_state": 0}}) == "model.params.random_state"


def test_non_json_values_are_rejected():
    assert _field_of({"params": {"C": np.float32(1.0)}}) == "model.params.C"
    assert _field_of({"params": {"C": float("nan")}}) == "model.params.C"
    assert _field_of({"params": {"class_weight": {1: 2.0}}}) == "model.params.class_weight"


def test_a_value_outside_its_range_is_rejected_naming_the_parameter_and_its_range():
    with pytest.raises(InvalidInput, match=r"C must be a number in \(0, 1,000,000\], got -1") as info:
        normalize_model_spec({"params": {"C": -1}})
    assert info.value.field == "model.params.C"
    assert _field_of({"type": "random_forest", "params": {"criterion": "bogus"}}) == "model.params.criterion"


def test_invalid_combination_is_caught_by_the_probe_fit():
    # penalty="l1" alone is a valid value, but the default lbfgs solver cannot use it.
    with pytest.raises(InvalidInput, match="lbfgs") as info:
        normalize_model_spec({"params": {"penalty": "l1"}})
    assert info.value.field == "model.params"


def test_valid_combination_passes_the_probe_fit():
    normalize_model_spec({"params": {"penalty": "l1", "solver": "liblinear"}})


def test_sgd_hinge_loss_is_rejected_for_lacking_predict_proba():
    with pytest.raises(InvalidInput, match="predict_proba") as info:
        normalize_model_spec({"type": "sgd_classifier", "params": {"loss": "hinge"}})
    assert info.value.field == "model.params.loss"


@pytest.mark.parametrize(
    "model_type, name, value",
    [
        ("random_forest", "n_estimators", 101),
        ("random_forest", "n_estimators", 500),
        ("random_forest", "max_depth", 101),
        ("random_forest", "max_leaf_nodes", 1001),
        ("random_forest", "max_features", None),
        ("random_forest", "max_features", 1.0),
        ("random_forest", "max_features", 0.13),
        ("random_forest", "max_features", 9),
        ("random_forest", "max_samples", 1.5),
        ("random_forest", "max_samples", 100_001),
        ("logistic_regression", "max_iter", 1001),
        ("sgd_classifier", "max_iter", 1001),
        ("sgd_classifier", "power_t", -1.0),
    ],
)
def test_resource_bounds_are_enforced(model_type, name, value):
    assert _field_of({"type": model_type, "params": {name: value}}) == f"model.params.{name}"


def test_values_at_the_resource_bounds_are_accepted():
    normalize_model_spec(
        {
            "type": "random_forest",
            "params": {
                "n_estimators": 100,
                "max_depth": 100,
                "max_leaf_nodes": 1000,
                "max_features": 8,
                "max_samples": 100_000,
            },
        }
    )
    normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 12, "max_features": 64}})
    normalize_model_spec({"type": "random_forest", "params": {"max_features": 0.125, "max_samples": 1.0}})
    normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 1000}})
    normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 100, "tol": None}})
    normalize_model_spec({"params": {"max_iter": 1000, "C": 1e6}})


def test_every_parameter_of_every_model_has_an_entry_in_the_bounds_table():
    for model_type, cls in MODEL_TYPES.items():
        assert set(PARAMS[model_type]) == set(cls().get_params()) - set(FORBIDDEN_PARAMS), model_type


def _range_ends():
    for model_type, table in PARAMS.items():
        for name, param in table.items():
            for number in param.numbers:
                over = number.high + 1 if number.integer else float(number.high * 2 + 1)
                yield model_type, name, number.high if number.integer else float(number.high), over


@pytest.mark.parametrize("model_type, name, top, over", list(_range_ends()))
def test_every_numeric_parameter_accepts_the_top_of_its_range_and_refuses_beyond_it(model_type, name, top, over):
    # l1_ratio 1 is an l1 penalty, which lbfgs (the default solver) cannot fit.
    params = {name: top, **({"solver": "saga"} if name == "l1_ratio" and model_type == "logistic_regression" else {})}
    if name == "max_features":
        params["n_estimators"] = 1  # one tree may weigh as many features as the limit
    normalize_model_spec({"type": model_type, "params": params})
    with pytest.raises(InvalidInput, match=f"{name} must be") as info:
        normalize_model_spec({"type": model_type, "params": {name: over}})
    assert info.value.field == f"model.params.{name}"


@pytest.mark.parametrize("value", [10**7, 10**18, 10**30])
def test_a_huge_max_leaf_nodes_is_refused_without_allocating_for_it(value):
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert _field_of({"type": "random_forest", "params": {"max_leaf_nodes": value}}) == "model.params.max_leaf_nodes"
    # A probe fitted with 10**7 leaves reserved 1.5 GB; kilobytes on Linux.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200 * 1024


@pytest.mark.parametrize(
    "model_type, name, value",
    [
        ("random_forest", "n_estimators", 10**18),
        ("random_forest", "min_samples_leaf", 10**30),
        ("random_forest", "max_samples", 10**30),
        ("random_forest", "criterion", 10**30),
        ("random_forest", "class_weight", {"a": 10**30}),
        ("random_forest", "monotonic_cst", [0, 10**18]),
        ("gaussian_nb", "priors", [10**30, 0]),
        ("sgd_classifier", "average", 10**30),
        ("logistic_regression", "max_iter", -(10**30)),
    ],
)
def test_an_integer_beyond_32_bits_anywhere_is_refused_naming_its_parameter(model_type, name, value):
    assert _field_of({"type": model_type, "params": {name: value}}) == f"model.params.{name}"


def test_sgd_may_not_run_100000_epochs_without_a_tolerance():
    with pytest.raises(InvalidInput, match="max_iter must be an integer from 1 to 1,000") as info:
        normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 100_000, "tol": None}})
    assert info.value.field == "model.params.max_iter"


def test_sgd_without_a_real_tolerance_is_held_to_100_epochs():
    for tol in (None, 0, 0.00009):
        normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 100, "tol": tol}})
        with pytest.raises(InvalidInput, match="at most 100 when tol is null or below 0.0001") as info:
            normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 101, "tol": tol}})
        assert info.value.field == "model.params.max_iter"
    assert _field_of({"type": "sgd_classifier", "params": {"tol": None}}) == "model.params.max_iter"
    normalize_model_spec({"type": "sgd_classifier", "params": {"max_iter": 1000, "tol": 0.0001}})
    assert build_estimator({"type": "sgd_classifier", "params": {"tol": None}}, 0).max_iter == 100


def test_logistic_regression_with_sag_or_saga_is_held_to_100_iterations():
    for solver in ("sag", "saga"):
        normalize_model_spec({"params": {"solver": solver, "max_iter": 100}})
        with pytest.raises(InvalidInput, match="at most 100 with solver") as info:
            normalize_model_spec({"params": {"solver": solver, "max_iter": 101}})
        assert info.value.field == "model.params.max_iter"


def test_newton_cholesky_is_refused_for_its_hessian_of_features_times_classes_squared():
    assert _field_of({"params": {"solver": "newton-cholesky"}}) == "model.params.solver"


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_estimators", True),
        ("C", False),
        ("max_depth", 5.0),
        ("solver", 3),
        ("class_weight", [{"a": 1.0}]),
        ("monotonic_cst", [0.5]),
        ("priors", ["a"]),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_its_parameter(name, value):
    model_type = next(t for t, table in PARAMS.items() if name in table)
    assert _field_of({"type": model_type, "params": {name: value}}) == f"model.params.{name}"


def test_trees_times_features_weighed_per_split_are_bounded_together():
    normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 50, "max_features": 16}})
    with pytest.raises(InvalidInput, match="n_estimators x max_features must be at most 800") as info:
        normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 51, "max_features": 16}})
    assert info.value.field == "model.params.max_features"


def test_a_forest_without_bootstrap_is_held_to_half_the_trees():
    normalize_model_spec({"type": "random_forest", "params": {"bootstrap": False, "n_estimators": 50}})
    normalize_model_spec(
        {"type": "random_forest", "params": {"bootstrap": False, "n_estimators": 25, "max_features": 16}}
    )
    assert _field_of({"type": "random_forest", "params": {"bootstrap": False}}) == "model.params.n_estimators"
    assert (
        _field_of({"type": "random_forest", "params": {"bootstrap": False, "n_estimators": 51}})
        == "model.params.n_estimators"
    )
    assert (
        _field_of({"type": "random_forest", "params": {"bootstrap": False, "n_estimators": 26, "max_features": 16}})
        == "model.params.max_features"
    )


def test_an_integer_max_samples_above_the_probes_rows_is_valid():
    normalize_model_spec({"type": "random_forest", "params": {"max_samples": 500}})


def test_a_forest_left_without_a_leaf_bound_is_built_with_the_default_one():
    for params in ({}, {"max_leaf_nodes": None}):
        model = build_estimator({"type": "random_forest", "params": params}, random_state=0)
        assert model.max_leaf_nodes == 1000
    assert build_estimator({"type": "random_forest", "params": {"max_leaf_nodes": 20}}, 0).max_leaf_nodes == 20


def test_a_spec_stored_before_the_bounds_is_built_within_them():
    forest = build_estimator({"type": "random_forest", "params": {"n_estimators": 500, "max_features": 1.0}}, 0)
    assert (forest.n_estimators, forest.max_features) == (100, 0.125)
    forest = build_estimator({"type": "random_forest", "params": {"n_estimators": 50, "max_features": 64}}, 0)
    assert (forest.n_estimators, forest.max_features) == (50, 16)
    forest = build_estimator({"type": "random_forest", "params": {"bootstrap": False}}, 0)
    assert forest.n_estimators == 50
    sgd = build_estimator(
        {"type": "sgd_classifier", "params": {"loss": "log_loss", "max_iter": 100_000, "tol": None}}, 0
    )
    assert sgd.max_iter == 100 and sgd.tol is None
    saga = build_estimator({"type": "logistic_regression", "params": {"solver": "saga", "max_iter": 5000}}, 0)
    assert saga.max_iter == 100
    assert build_estimator({"type": "logistic_regression", "params": {"max_iter": 50}}, 0).max_iter == 50


def test_data_shaped_params_are_left_to_the_real_fit():
    # Three priors and four monotonic constraints cannot fit the probe's 2-class, 2-feature data.
    normalize_model_spec({"type": "gaussian_nb", "params": {"priors": [0.2, 0.3, 0.5]}})
    normalize_model_spec({"type": "random_forest", "params": {"monotonic_cst": [1, 0, 0, -1]}})
    normalize_model_spec({"params": {"class_weight": {"spam": 2.0}}})


def test_standardize_puts_a_standard_scaler_before_the_seeded_model():
    spec = normalize_model_spec({"type": "random_forest", "params": {"n_estimators": 5}, "standardize": True})
    assert spec == {"type": "random_forest", "params": {"n_estimators": 5}, "standardize": True}
    model = build_estimator(spec, random_state=7)
    assert isinstance(model, Pipeline) and isinstance(model.named_steps["scale"], StandardScaler)
    assert isinstance(model.named_steps["model"], RandomForestClassifier)
    assert model.named_steps["model"].random_state == 7


def test_a_standardized_model_predicts_as_the_model_fitted_on_scaled_features():
    X, y = _three_class_data()
    X = X * [1.0, 100.0, 0.01, 1e4]
    spec = normalize_model_spec({"standardize": True})
    proba = build_estimator(spec, random_state=0).fit(X, y).predict_proba(X)
    scaler = StandardScaler().fit(X)
    expected = LogisticRegression(random_state=0).fit(scaler.transform(X), y).predict_proba(scaler.transform(X))
    np.testing.assert_allclose(proba, expected)


def test_standardize_false_is_left_out_so_specs_stored_before_it_read_the_same():
    assert normalize_model_spec({"standardize": False}) == {"type": "logistic_regression", "params": {}}
    assert isinstance(build_estimator({"type": "logistic_regression", "params": {}}, 0), LogisticRegression)


@pytest.mark.parametrize("value", [1, 0, "true", None, [True]])
def test_standardize_must_be_a_boolean(value):
    assert _field_of({"standardize": value}) == "model.standardize"


def test_a_standardized_model_is_signed_and_loaded_like_any_other():
    X, y = _three_class_data()
    model = build_estimator(normalize_model_spec({"standardize": True}), random_state=0).fit(X, y)
    blob = dump_model(model, b"k" * 32, "pool", 3)
    np.testing.assert_array_equal(load_model(blob, b"k" * 32, "pool", 3).predict_proba(X), model.predict_proba(X))
    with pytest.raises(UntrustedModel):
        load_model(blob, b"other key" * 4, "pool", 3)
