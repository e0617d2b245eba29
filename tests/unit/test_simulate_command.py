"""`sieve simulate` end to end on a tiny case, its data sets, its protocol and its plot."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.colors import rgb_to_hsv

from sieve.cli import main
from sieve.core.selection import ALL_STRATEGIES
from sieve.simulate.datasets import load_dataset
from sieve.simulate.plot import DPI, SIZE_INCHES, line_style
from sieve.simulate.protocol import prepare

TINY = [
    "--dataset",
    "iris",
    "--seeds",
    "2",
    "--budget",
    "16",
    "--batch-size",
    "5",
    "--init-per-class",
    "1",
    "--jobs",
    "1",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("simulation")
    result = CliRunner().invoke(main, ["simulate", *TINY, "--strategies", "margin", "--out", str(out)])
    return result, out


def test_a_tiny_simulation_writes_results_json_with_every_figure(tiny_run):
    result, out = tiny_run
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "iris" and (results["n_pool"], results["n_test"]) == (120, 30)
    # random is the baseline of every comparison, so it runs even when not asked for.
    assert set(results["strategies"]) == {"margin", "random"}
    assert len(results["full_pool_accuracy_per_seed"]) == 2
    for summary in results["strategies"].values():
        assert summary["curve"]["labels"] == [3, 8, 13, 16]
        assert len(summary["curve"]["mean"]) == len(summary["curve"]["std"]) == 4
        assert len(summary["aulc_per_seed"]) == 2 and len(summary["stop"]["per_seed"]) == 2
        assert summary["wins"] + summary["ties"] + summary["losses"] == 2
    assert results["strategies"]["random"]["daulc"] == 0.0
    assert "margin" in result.output and "dAULC" in result.output


def test_the_plot_is_a_png_of_the_expected_size(tiny_run):
    _, out = tiny_run
    image = matplotlib.image.imread(out / "learning_curves.png")
    assert image.shape[:2] == (SIZE_INCHES[1] * DPI, SIZE_INCHES[0] * DPI)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--strategies", "margin,psychic", "unknown strategies psychic"),
        ("--budget", "0", "budget must be at least 1"),
        ("--model-params", '{"C": -1}', "model.params.C"),
        ("--model-params", "{oops", "not JSON"),
        ("--dataset", "nowhere.csv", "no file nowhere.csv"),
        ("--dataset", "mnist", "unknown data set 'mnist'"),
        ("--jobs", "0", "0 runs nothing"),
        ("--audit", "0.7", "audit rates must lie in (0, 0.5]"),
        ("--audit", "five", "not a comma-separated list of rates"),
        ("--test-share", "1", "test-share must lie between 0 and 1"),
    ],
)
def test_bad_options_are_usage_errors_that_say_what_is_wrong(tmp_path, option, value, message):
    # Given twice, an option takes its last value.
    result = CliRunner().invoke(main, ["simulate", *TINY, "--out", str(tmp_path), option, value])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_csv_data_set_takes_its_labels_from_the_named_column(tmp_path):
    path = tmp_path / "animals.csv"
    path.write_text("kind,weight,height\ncat,4,30\ndog,20,60\ncat,5,25\n")
    data = load_dataset(str(path), "kind")
    assert data.name == "animals" and data.classes == ["cat", "dog"]
    assert data.y.tolist() == [0, 1, 0] and data.X.tolist() == [[4, 30], [20, 60], [5, 25]]
    with pytest.raises(ValueError, match="no column 'species'"):
        load_dataset(str(path), "species")


def test_an_npz_data_set_holds_x_and_y(tmp_path):
    path = tmp_path / "blobs.npz"
    np.savez(path, X=np.eye(4), y=np.array([1, 2, 1, 2]))
    data = load_dataset(str(path))
    assert data.X.shape == (4, 4) and data.y.tolist() == [0, 1, 0, 1] and data.classes == [1, 2]


def test_each_seed_fixes_a_stratified_standardized_split_and_its_initial_labels():
    data = load_dataset("wine")
    setup = prepare(data, seed=3, init_per_class=2)
    assert len(setup.y_pool) + len(setup.y_test) == len(data.y) and len(setup.y_test) == 36
    assert np.bincount(setup.y_pool[setup.initial]).tolist() == [2, 2, 2]
    assert setup.X_pool.dtype == np.float32 and np.allclose(setup.X_pool.mean(axis=0), 0, atol=1e-5)
    # A pool smaller than the stop set's 1000 rows is the stop set.
    assert setup.stop_rows.tolist() == list(range(len(setup.y_pool)))
    again = prepare(data, seed=3, init_per_class=2)
    assert again.initial.tolist() == setup.initial.tolist() and np.array_equal(again.X_test, setup.X_test)
    assert prepare(data, seed=4, init_per_class=2).initial.tolist() != setup.initial.tolist()


def test_every_strategy_has_a_curve_style_of_its_own_and_no_two_share_a_hue_and_a_dash():
    styles = {name: line_style(name) for name in ALL_STRATEGIES}
    assert styles["random"] == {"color": "black", "linestyle": "--"}
    others = [name for name in ALL_STRATEGIES if name != "random"]
    for i, first in enumerate(others):
        for second in others[i + 1 :]:
            (h1, s1, _), (h2, s2, _) = (rgb_to_hsv(styles[name]["color"][:3]) for name in (first, second))
            greys = s1 < 0.2 and s2 < 0.2  # a grey's hue means nothing
            same_hue = greys or (min(s1, s2) >= 0.2 and min(abs(h1 - h2), 1 - abs(h1 - h2)) < 0.03)
            assert not (same_hue and styles[first]["linestyle"] == styles[second]["linestyle"]), (first, second)
