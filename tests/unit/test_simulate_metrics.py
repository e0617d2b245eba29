"""The simulation's figures on hand-made learning curves."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.simulate.metrics import (
    aulc,
    cross_validation_bias,
    interval_coverage,
    labels_to,
    median_or_none,
    paired,
    stop_point,
    target_stop,
)
from sieve.simulate.results import summarize, table
from sieve.simulate.trace import Trace, batch_size_now


def test_aulc_is_the_trapezoid_area_divided_by_the_labels_range():
    assert aulc([0, 10, 20], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    # Uneven steps weigh each segment by its width: (0.5 * 10 + 0.6 * 20) / 30.
    assert aulc([0, 10, 30], [0.4, 0.6, 0.6]) == pytest.approx(17 / 30)
    assert aulc([20, 30], [0.8, 0.8]) == pytest.approx(0.8)


def test_aulc_of_a_single_round_is_its_accuracy_and_of_none_an_error():
    assert aulc([10], [0.42]) == 0.42
    with pytest.raises(ValueError):
        aulc([], [])


def test_labels_to_is_the_first_round_that_reaches_the_target_or_none():
    labels, accuracy = [10, 20, 30, 40], [0.5, 0.9, 0.8, 0.95]
    assert labels_to(labels, accuracy, 0.9) == 20
    assert labels_to(labels, accuracy, 0.95) == 40
    assert labels_to(labels, accuracy, 0.96) is None


@pytest.mark.parametrize(
    "values, median",
    [
        ([10, 30, 20], 20),
        ([10, 20, None], 20),
        ([10, None, None], None),
        ([10, 20, 30, None], 25),
        ([10, 20, None, None], None),
    ],
)
def test_a_median_over_seeds_that_never_reached_a_target_is_none(values, median):
    assert median_or_none(values) == median


def test_paired_counts_wins_ties_and_losses_against_the_baseline_with_a_tie_band_of_half_a_point():
    baseline = np.zeros(6)
    result = paired([0.01, 0.005, 0.0049, -0.0049, -0.005, -0.02], baseline)
    assert (result["wins"], result["ties"], result["losses"]) == (2, 2, 2)
    assert result["daulc"] == pytest.approx(0.0)
    assert paired([0.8, 0.9, 0.7], [0.7, 0.7, 0.7])["daulc"] == pytest.approx(0.1)


LABELS = [10, 20, 30, 40, 50, 60]
STABLE_FROM_THIRD = [None, 0.5, 0.995, 0.995, 0.995, 1.0]


def test_the_plateau_rule_stops_after_three_rounds_of_kappa_above_099_and_a_timely_stop_is_good():
    stop = stop_point(LABELS, [0.5, 0.8, 0.9, 0.97, 0.98, 0.99], STABLE_FROM_THIRD, full_accuracy=1.0)
    assert stop == {"labels": 50, "accuracy_share": 0.98, "good": True, "labels_to_97": 40}


def test_a_stop_long_after_the_curve_reached_97_percent_is_not_good():
    stop = stop_point(LABELS, [0.5, 0.97, 0.97, 0.97, 0.97, 0.97], STABLE_FROM_THIRD, full_accuracy=1.0)
    assert stop["labels"] == 50 and stop["labels_to_97"] == 20 and not stop["good"]


def test_a_stop_below_97_percent_of_the_full_pool_is_not_good():
    stop = stop_point(LABELS, [0.5, 0.6, 0.7, 0.8, 0.9, 0.99], STABLE_FROM_THIRD, full_accuracy=1.0)
    assert stop["accuracy_share"] == pytest.approx(0.9) and not stop["good"]


def test_a_rule_that_never_fires_stops_nowhere():
    stop = stop_point(LABELS, [0.9] * 6, [None, 0.995, 0.995, 0.5, 0.995, 0.995], full_accuracy=0.9)
    assert stop == {"labels": None, "accuracy_share": None, "good": False, "labels_to_97": 10}


def test_the_last_batch_is_cut_to_what_is_left_of_the_budget_or_the_pool():
    assert batch_size_now(20, 100, 10, 500) == 10
    assert batch_size_now(495, 100, 10, 500) == 5
    assert batch_size_now(20, 3, 10, 500) == 3
    assert batch_size_now(500, 100, 10, 500) == 0


def _trace(accuracy, kappas=None) -> Trace:
    trace = Trace(labels=[10, 20, 30, 40], accuracy=list(accuracy))
    trace.kappas = kappas or [None, 0.5, 0.5, 0.5]
    return trace


def test_summary_has_every_figure_per_strategy_paired_by_seed_against_random():
    traces = {
        "random": [_trace([0.5, 0.6, 0.7, 0.8]), _trace([0.5, 0.7, 0.8, 0.9])],
        "margin": [_trace([0.5, 0.8, 0.9, 0.95]), _trace([0.5, 0.7, 0.8, 0.9])],
    }
    results = summarize("toy", 100, 25, [1.0, 1.0], traces, {"mode": "in-process"})
    assert set(results) == {
        "dataset",
        "n_pool",
        "n_test",
        "full_pool_accuracy",
        "full_pool_accuracy_per_seed",
        "settings",
        "ranking_by_daulc",
        "strategies",
        "audit",
    }
    assert results["ranking_by_daulc"] == ["margin", "random"]
    margin = results["strategies"]["margin"]
    assert set(margin) >= {
        "aulc",
        "daulc",
        "labels_to_95",
        "labels_to_99",
        "ratio_95_vs_random",
        "wins",
        "ties",
        "losses",
        "curve",
        "stop",
    }
    # Seed 0: margin's AULC is (0.65 + 0.85 + 0.925) / 3 against random's (0.55 + 0.65 + 0.75) / 3;
    # seed 1: both draw the same curve, of AULC (0.6 + 0.75 + 0.85) / 3.
    assert margin["aulc"] == pytest.approx(np.median([2.425 / 3, 2.2 / 3]))
    assert margin["daulc"] == pytest.approx(np.median([2.425 / 3 - 0.65, 0.0]))
    assert (margin["wins"], margin["ties"], margin["losses"]) == (1, 1, 0)
    # Seed 0 reaches 95 % at 40 labels, seed 1 never: with two seeds, the median one does not get there.
    assert margin["labels_to_95"] is None
    assert margin["ratio_95_vs_random"] is None
    assert margin["curve"]["labels"] == [10, 20, 30, 40]
    assert margin["curve"]["mean"] == pytest.approx([0.5, 0.75, 0.85, 0.925])
    assert margin["curve"]["std"] == pytest.approx([0.0, 0.05, 0.05, 0.025])
    assert margin["stop"]["fired"] == 0 and margin["stop"]["labels"] is None
    assert "margin" in table(results) and "+0.0" in table(results)


def test_the_ratio_to_random_divides_the_labels_each_needed_for_95_percent():
    traces = {"random": [_trace([0.5, 0.6, 0.7, 0.96])], "margin": [_trace([0.5, 0.96, 0.97, 0.97])]}
    results = summarize("toy", 100, 25, [1.0], traces, {})
    assert results["strategies"]["margin"]["ratio_95_vs_random"] == pytest.approx(0.5)
    assert results["strategies"]["random"]["ratio_95_vs_random"] == pytest.approx(1.0)


def _estimated(accuracy, estimates, cross_validated=None) -> Trace:
    trace = Trace()
    for i, (truth, e) in enumerate(zip(accuracy, estimates)):
        cv = None if cross_validated is None else cross_validated[i]
        trace.record(10 * (i + 1), truth, np.zeros(3), spent=10 * (i + 1) + i, estimate=e, cross_validated=cv)
    return trace


def _interval(low, high, n=20):
    return {"value": (low + high) / 2, "low": low, "high": high, "n": n, "source": "audit"}


def test_coverage_counts_the_rounds_whose_interval_holds_the_test_accuracy():
    runs = [
        _estimated([0.5, 0.7, 0.8], [None, _interval(0.6, 0.8, 5), _interval(0.7, 0.75, 12)]),
        _estimated([0.9], [_interval(0.85, 0.95, 30)]),
    ]
    # Held: 0.7 in [0.6, 0.8] and 0.9 in [0.85, 0.95]; missed: 0.8 above [0.7, 0.75]. Widths 0.2, 0.05, 0.1.
    assert interval_coverage(runs) == {
        "rounds": 3,
        "coverage": pytest.approx(2 / 3),
        "coverage_n10": pytest.approx(1 / 2),
        "mean_width": pytest.approx(0.35 / 3),
    }


def test_the_target_rule_stops_at_the_first_lower_bound_at_the_target_and_is_judged_by_the_truth():
    spent, truth = [10, 20, 30, 40], [0.70, 0.84, 0.79, 0.90]
    estimates = [None, _interval(0.75, 0.9), _interval(0.80, 0.9), _interval(0.85, 0.95)]
    # The lower bound first reaches 0.8 at 30 labels, where the truth, 0.79, is below: a false stop;
    # the truth first reached 0.8 at 20 labels.
    assert target_stop(spent, truth, estimates, 0.8) == {
        "labels": 30,
        "accuracy": 0.79,
        "false_stop": True,
        "hindsight": 20,
        "ratio": 1.5,
    }
    assert target_stop(spent, truth, estimates, 0.86)["labels"] is None


def test_the_cross_validation_bias_is_the_mean_difference_to_the_truth():
    run = _estimated([0.6, 0.7, 0.8], [None] * 3, cross_validated=[None, 0.75, 0.7])
    expected = {"rounds": 2, "bias": pytest.approx(-0.025), "mean_abs": pytest.approx(0.075)}
    assert cross_validation_bias([run]) == expected


def test_audited_runs_are_summed_up_with_their_labels_spent_against_random():
    estimates = [None, _interval(0.5, 0.9), _interval(0.82, 0.95)]
    audited = [_estimated([0.6, 0.8, 0.9], estimates, [None, 0.7, 0.7])]
    baseline = Trace()
    for labels, truth in zip([10, 21, 32], [0.6, 0.7, 0.8]):
        baseline.record(labels, truth, np.zeros(3))
    results = summarize("d", 100, 50, [1.0], {"random": [baseline]}, {}, {("margin", 0.1): audited}, target=0.8)
    a = results["audit"]["margin@0.1"]
    # Over the labels spent (10, 21, 32), the audited curve is 0.1 above random's on two rounds of three.
    assert a["daulc"] == pytest.approx(aulc([10, 21, 32], [0.6, 0.8, 0.9]) - aulc([10, 21, 32], [0.6, 0.7, 0.8]))
    assert (a["coverage"], a["target"]["labels"], a["target"]["hindsight"], a["target"]["false_stops"]) == (
        1.0,
        32,
        21,
        0,
    )
    assert "margin@0.1" in table(results)


def test_the_simulated_target_rule_is_the_pools_and_waits_for_ten_items():
    spent, truth = [10, 20, 30], [0.2, 0.3, 0.5]
    few = [None, _interval(0.42, 1.0, n=2), _interval(0.45, 0.6, n=10)]
    # Two of two right pass 0.4 at 20 labels, but the rule waits for the round with ten items.
    assert target_stop(spent, truth, few, 0.4)["labels"] == 30
