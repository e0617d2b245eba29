"""Stopping rules: kappa against scikit-learn's, and budget, target and plateau as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from sieve.core.history import model_stop
from sieve.core.stopping import (
    Round,
    StoppingPolicy,
    choose_stop_set,
    cohen_kappa,
    gain_upper,
    plateau_reached,
    recommendation,
    with_budget,
)


@pytest.mark.parametrize("seed", range(20))
def test_kappa_equals_scikit_learns_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, size=50)
    b = np.where(rng.random(50) < 0.7, a, rng.integers(0, 4, size=50))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_kappa_by_hand_on_a_two_by_two_table():
    # 20 agree on "yes", 15 on "no", 10 + 5 disagree: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5.
    a = ["yes"] * 20 + ["no"] * 15 + ["yes"] * 10 + ["no"] * 5
    b = ["yes"] * 20 + ["no"] * 15 + ["no"] * 10 + ["yes"] * 5
    assert cohen_kappa(a, b) == pytest.approx((0.7 - 0.5) / 0.5)


def test_identical_single_class_labelings_agree_perfectly():
    assert cohen_kappa(["a"] * 5, ["a"] * 5) == 1.0


def test_kappa_refuses_mismatched_or_empty_labelings():
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError):
        cohen_kappa([], [])


def test_plateau_needs_a_full_window_of_high_kappas():
    assert not plateau_reached([None, 0.995, 0.999], 0.99, 3)
    assert plateau_reached([None, 0.5, 0.995, 0.999, 1.0], 0.99, 3)
    assert not plateau_reached([0.995, 0.98, 0.999, 1.0], 0.99, 3)


def test_a_settled_pool_is_told_to_stop_and_a_changing_one_is_not():
    settled = [Round(10), Round(20, kappa_with_previous=0.9)] + [
        Round(30 + i, kappa_with_previous=0.995) for i in range(3)
    ]
    changing = [
        Round(10),
        Round(20, kappa_with_previous=0.995),
        Round(30, kappa_with_previous=0.97),
        Round(40, kappa_with_previous=0.999),
    ]
    assert recommendation(StoppingPolicy(), settled)["recommended"] is True
    assert recommendation(StoppingPolicy(), changing) == {"recommended": False, "reasons": []}


def test_budget_and_target_each_recommend_stopping_with_their_reason():
    rounds = [Round(100, metrics={"accuracy": 0.91})]
    answer = recommendation(StoppingPolicy(budget=100, target=0.9, plateau=False), rounds)
    assert answer["recommended"] and [r.split(":")[0] for r in answer["reasons"]] == ["budget", "target"]
    assert not recommendation(StoppingPolicy(budget=101, target=0.95, plateau=False), rounds)["recommended"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget": 0},
        {"kappa_threshold": 0},
        {"kappa_threshold": 1.5},
        {"window": 0},
        {"audit_rate": -0.1},
        {"audit_rate": 0.6},
    ],
)
def test_a_policy_refuses_meaningless_settings(kwargs):
    with pytest.raises(ValueError):
        StoppingPolicy(**kwargs)


def test_a_policy_reads_the_json_spec_and_writes_it_back_with_defaults():
    spec = {
        "budget": 50,
        "enforce_budget": True,
        "target": {"metric": "macro_f1", "value": 0.8},
        "plateau": {"kappa": 0.95, "window": 2, "gain": 0.02, "labels": 50},
        "audit": {"rate": 0.05},
    }
    policy = StoppingPolicy.from_spec(spec)
    assert (policy.budget, policy.target, policy.target_metric, policy.kappa_threshold, policy.window) == (
        50,
        0.8,
        "macro_f1",
        0.95,
        2,
    )
    assert policy.to_spec() == spec
    assert StoppingPolicy.from_spec(None).to_spec() == {
        "budget": None,
        "enforce_budget": False,
        "target": None,
        "plateau": {"kappa": 0.99, "window": 3, "gain": 0.01, "labels": 100},
        "audit": None,
    }
    assert StoppingPolicy.from_spec({"plateau": None}).plateau is False
    with pytest.raises(ValueError):
        StoppingPolicy.from_spec({"enforce_budget": True})


def test_the_live_budget_joins_the_model_rules_reasons():
    assert with_budget(["plateau: x"], 9, 10) == {"recommended": True, "reasons": ["plateau: x"]}
    assert with_budget([], 10, 10) == {"recommended": True, "reasons": ["budget: 10 labels spent of 10"]}
    assert with_budget([], 10, None) == {"recommended": False, "reasons": []}


def test_the_model_rules_over_history_entries_follow_the_policy_and_leave_the_budget_out():
    # Out of order, as a hash of entries is read; the plateau looks at the newest versions.
    entries = [
        {
            "model_version": v,
            "n_labels": 10 * v,
            "metrics": {"accuracy": 0.5 + v / 10},
            "kappa_with_previous": None if v == 1 else 0.995,
        }
        for v in (3, 1, 4, 2)
    ]
    both = model_stop(StoppingPolicy(budget=5, target=0.85), entries)
    assert [r.split(":")[0] for r in both["reasons"]] == ["target", "plateau"] and both["recommended"]
    assert model_stop(StoppingPolicy(target=0.95, window=4), entries) == {"recommended": False, "reasons": []}
    assert model_stop(StoppingPolicy(), []) == {"recommended": False, "reasons": []}


def test_a_target_met_by_an_estimate_says_so():
    rounds = [Round(30, metrics={"accuracy": 0.95, "source": "cross_validation"})]
    (reason,) = recommendation(StoppingPolicy(target=0.9, plateau=False), rounds)["reasons"]
    assert reason.startswith("target: accuracy 0.9500 >= 0.9") and "estimate" in reason


def test_the_stop_set_is_a_seeded_sorted_sample_of_at_most_its_size():
    candidates = np.arange(5000)[::-1]
    first, again = choose_stop_set(candidates, seed=7), choose_stop_set(candidates.copy(), seed=7)
    assert len(first) == 1000 and np.array_equal(first, again) and np.all(np.diff(first) > 0)
    assert not np.array_equal(first, choose_stop_set(candidates, seed=8))
    assert np.array_equal(choose_stop_set(np.array([5, 2, 9]), seed=7), [2, 5, 9])


def _estimate(value, low, high, source="audit"):
    return {"metric": "accuracy", "value": value, "low": low, "high": high, "n": 100, "level": 0.9, "source": source}


def test_the_target_fires_on_the_lower_bound_of_the_interval_not_the_value():
    last = Round(200, metrics={"accuracy": 0.9, "source": "audit"}, estimate=_estimate(0.9, 0.85, 0.93))
    assert not recommendation(StoppingPolicy(target=0.86, plateau=False), [last])["recommended"]
    answer = recommendation(StoppingPolicy(target=0.85, plateau=False), [last])
    assert answer["reasons"] == ["target: accuracy >= 0.8500 (90 % lower bound) >= 0.85"]


def test_a_cross_validated_target_says_it_is_biased():
    last = Round(200, metrics={"accuracy": 0.9, "source": "cross_validation"}, estimate=_estimate(0.9, 0.86, 0.93))
    (reason,) = recommendation(StoppingPolicy(target=0.85, plateau=False), [last])["reasons"]
    assert reason.endswith("(cross-validated estimate, biased)")


def test_the_gain_bound_is_newcombes_hybrid_score_by_hand():
    # d = 0.80 - 0.79 = 0.01; half-widths 0.85 - 0.80 and 0.79 - 0.74: 0.01 + sqrt(2 * 0.05^2) = 0.0807.
    assert gain_upper(_estimate(0.80, 0.76, 0.85), _estimate(0.79, 0.74, 0.83)) == pytest.approx(0.080711, abs=1e-6)


def test_the_plateau_on_the_estimate_compares_with_the_model_gain_labels_ago():
    tight = [
        Round(100, estimate=_estimate(0.850, 0.845, 0.855)),
        Round(150, estimate=_estimate(0.851, 0.846, 0.856)),
        Round(200, estimate=_estimate(0.852, 0.847, 0.857)),
    ]
    policy = StoppingPolicy(min_gain=0.02, gain_labels=100)
    # Against the model at 100 labels: 0.002 + sqrt(0.005^2 + 0.005^2) = 0.00907 < 0.02.
    (reason,) = recommendation(policy, tight)["reasons"]
    assert reason.startswith("plateau: accuracy gained at most +0.0091") and "100 labels" in reason
    assert not recommendation(StoppingPolicy(min_gain=0.005, gain_labels=100), tight)["recommended"]
    # No model 300 labels before the last: nothing to compare with, and kappa does not apply.
    assert not recommendation(StoppingPolicy(min_gain=0.02, gain_labels=300), tight)["recommended"]


def test_without_an_unbiased_estimate_the_plateau_is_kappas():
    estimate = _estimate(0.9, 0.89, 0.91, "cross_validation")
    biased = [Round(n, kappa_with_previous=0.999, estimate=estimate) for n in (1, 2, 3)]
    assert recommendation(StoppingPolicy(), biased)["reasons"][0].startswith("plateau: predictions agreed")


def test_the_target_waits_for_ten_items_behind_the_estimate():
    # Nine of nine right: a lower bound of 9 / (9 + 2.71) = 0.77 passes 0.7, but nine items are too few.
    nine = {**_estimate(1.0, 0.7686, 1.0), "n": 9}
    assert not recommendation(StoppingPolicy(target=0.7, plateau=False), [Round(50, estimate=nine)])["recommended"]
    ten = {**_estimate(1.0, 0.787, 1.0), "n": 10}
    assert recommendation(StoppingPolicy(target=0.7, plateau=False), [Round(50, estimate=ten)])["recommended"]
