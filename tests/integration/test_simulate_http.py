"""The simulation run against a live Sieve draws the same learning curves as the one run in process."""
from __future__ import annotations

import pytest

from sieve.core.estimators import normalize_model_spec
from sieve.simulate.datasets import load_dataset
from sieve.simulate.local import run_local
from sieve.simulate.protocol import prepare
from sieve.simulate.remote import SieveClient, run_remote

SPEC = normalize_model_spec({"type": "logistic_regression", "params": {"max_iter": 1000}})


@pytest.mark.parametrize("strategy", ["margin", "random"])
@pytest.mark.parametrize("seed", [0, 1])
def test_over_http_the_picks_curves_and_stop_set_agreement_match_the_in_process_loop(
        live_url, redis, seed, strategy):
    setup = prepare(load_dataset("iris"), seed, init_per_class=1)
    local = run_local(setup, strategy, SPEC, batch_size=4, budget=23)
    remote = run_remote(SieveClient(live_url), setup, strategy, SPEC, batch_size=4, budget=23)
    assert local.labels == remote.labels == [3, 7, 11, 15, 19, 23]
    assert remote.picks == local.picks
    assert remote.accuracy == local.accuracy
    assert remote.kappas == local.kappas
    # The pool is deleted when the run ends.
    assert not list(redis.scan_iter("sieve:{*}:meta"))
