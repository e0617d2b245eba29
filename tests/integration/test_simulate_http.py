"""The simulation run against a live Sieve draws the same learning curves as the one run in process."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sieve.cli import main
from sieve.client import Client
from sieve.core.estimators import normalize_model_spec
from sieve.simulate.datasets import load_dataset
from sieve.simulate.local import run_local
from sieve.simulate.protocol import prepare
from sieve.simulate.remote import run_remote
from sieve.storage.keys import ANY_POOL

SPEC = normalize_model_spec({"type": "logistic_regression", "params": {"max_iter": 1000}})


@pytest.mark.parametrize("strategy", ["auto", "margin", "random"])
@pytest.mark.parametrize("seed", [0, 1])
def test_over_http_the_picks_curves_and_stop_set_agreement_match_the_in_process_loop(live_url, redis, seed, strategy):
    setup = prepare(load_dataset("iris"), seed, init_per_class=1)
    local = run_local(setup, strategy, SPEC, batch_size=4, budget=23)
    remote = run_remote(Client(live_url), setup, strategy, SPEC, batch_size=4, budget=23)
    assert local.labels == remote.labels == [3, 7, 11, 15, 19, 23]
    assert remote.picks == local.picks
    assert remote.accuracy == local.accuracy
    assert remote.kappas == local.kappas
    # The pool is deleted when the run ends.
    assert not list(redis.scan_iter(ANY_POOL.meta))


def test_sieve_simulate_with_url_writes_the_results_of_the_in_process_run(live_url, redis, tmp_path):
    args = [
        "simulate",
        "--dataset",
        "iris",
        "--strategies",
        "random,margin",
        "--seeds",
        "2",
        "--budget",
        "18",
        "--batch-size",
        "5",
        "--jobs",
        "2",
    ]
    local = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "local")])
    remote = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "remote"), "--url", live_url])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    local, remote = (json.loads((tmp_path / where / "results.json").read_text()) for where in ("local", "remote"))
    assert remote["settings"].pop("mode") == "http" and local["settings"].pop("mode") == "in-process"
    assert remote == local
    assert local["strategies"]["margin"]["curve"]["labels"] == [6, 11, 16, 18]
