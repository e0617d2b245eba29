"""Stopping over real HTTP with real workers: budget, plateau, the stop flag, the curve, bad specs."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from tests.helpers import items_of
from tests.integration.test_bad_input import assert_problem


def _blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(-4, 1, size=(n // 2, 4)), rng.normal(4, 1, size=(n - n // 2, 4))])
    return X, ["neg"] * (n // 2) + ["pos"] * (n - n // 2)


def _rounds(api, pool, batches):
    for batch in batches:
        api.teach(pool, batch)
        api.wait_idle(pool)


def test_the_plateau_fires_once_predictions_have_settled(api):
    X, y = _blobs()
    pool = api.create_pool(items=items_of(X), random_state=0, stopping={"plateau": {"kappa": 0.99, "window": 3}},
                           labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}])
    api.wait_idle(pool)
    assert api.status(pool)["stop"] == {"recommended": False, "reasons": []}
    # Far-apart blobs: every new label confirms what the model already predicts.
    _rounds(api, pool, [[(f"i{i}", y[i]), (f"i{199 - i}", y[199 - i])] for i in (1, 2, 3)])
    history = api.get(f"/v1/pools/{pool}/history").json()
    assert [v["kappa_with_previous"] for v in history["versions"]] == [None, 1.0, 1.0, 1.0]
    assert [v["stop"]["recommended"] for v in history["versions"]] == [False, False, False, True]
    status = api.status(pool)
    assert status["stop"]["recommended"] is True and status["stop"]["reasons"][0].startswith("plateau")
    assert api.query(pool, k=1)["stop"] == status["stop"]


def test_the_plateau_does_not_fire_while_predictions_keep_changing(api):
    X, y = _blobs()
    pool = api.create_pool(items=items_of(X), random_state=0,
                           labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}])
    api.wait_idle(pool)
    # The two labels swap every round: the model flips its predictions each time.
    swaps = [[("i0", "pos"), ("i199", "neg")], [("i0", "neg"), ("i199", "pos")]] * 2
    _rounds(api, pool, swaps)
    history = api.get(f"/v1/pools/{pool}/history").json()
    kappas = [v["kappa_with_previous"] for v in history["versions"]]
    assert len(kappas) == 5 and kappas[0] is None and all(k < 0 for k in kappas[1:]), kappas
    assert api.status(pool)["stop"] == {"recommended": False, "reasons": []}
    assert api.query(pool, k=1)["stop"]["recommended"] is False


def test_a_spent_budget_recommends_stopping_at_once_and_refuses_queries_when_enforced(api):
    X, y = _blobs(40)
    labels = [{"id": f"i{i}", "label": y[i]} for i in (0, 1, 38, 39)]
    kept = api.create_pool(items=items_of(X), labels=labels, stopping={"budget": 5, "plateau": None})
    enforced = api.create_pool(items=items_of(X), labels=labels, stopping={"budget": 5, "enforce_budget": True})
    for pool in (kept, enforced):
        answer = api.query(pool, k=2, wait=20)
        assert answer["stop"] == {"recommended": False, "reasons": []}
        api.teach(pool, [("i2", "neg")])
    # No waiting for a retrain: the label count the budget depends on is updated by teach itself.
    answer = api.query(kept, k=2)
    assert answer["stop"]["recommended"] is True and answer["stop"]["reasons"] == ["budget: 5 labels spent of 5"]
    assert len(answer["items"]) == 2
    refused = assert_problem(api.get(f"/v1/pools/{enforced}/query", params={"k": 2}), 409, "stopping.budget")
    assert "budget" in refused["detail"]
    status = api.status(enforced)
    assert status["stop"]["recommended"] is True and status["stopping"]["budget"] == 5
    assert status["stopping"]["enforce_budget"] is True


@pytest.mark.parametrize("stopping, field", [
    ({"budget": 0}, "stopping.budget"),
    ({"budget": 1.5}, "stopping.budget"),
    ({"enforce_budget": True}, "stopping.enforce_budget"),
    ({"budget": 3, "enforce_budget": 1}, "stopping.enforce_budget"),
    ({"target": {"metric": "speed", "value": 0.9}}, "stopping.target.metric"),
    ({"target": {"metric": "accuracy", "value": 2}}, "stopping.target.value"),
    ({"target": {"metric": "accuracy"}}, "stopping.target.value"),
    ({"plateau": {"kappa": 0}}, "stopping.plateau.kappa"),
    ({"plateau": {"window": 0}}, "stopping.plateau.window"),
    ({"plateau": {"window": "3"}}, "stopping.plateau.window"),
    ({"patience": 3}, "stopping.patience"),
    ("soon", "stopping"),
])
def test_a_bad_stopping_spec_is_a_422_naming_the_field(api, stopping, field):
    assert_problem(api.post("/v1/pools", json={"stopping": stopping}), 422, field)


def test_a_bad_split_is_a_422_naming_the_field(api):
    pool = api.create_pool(items=items_of(np.zeros((2, 2))))
    answer = api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i0", "label": "a", "split": "test"}]})
    assert_problem(answer, 422, "labels[0].split")


def test_the_learning_curve_is_a_png_of_the_expected_size_and_an_svg(api):
    X, y = _blobs(60)
    pool = api.create_pool(items=items_of(X), random_state=0, stopping={"target": {"metric": "accuracy", "value": 0.9}},
                           labels=[{"id": f"i{i}", "label": y[i]} for i in (0, 1, 2, 57, 58, 59)]
                           + [{"id": f"i{i}", "label": y[i], "split": "eval"} for i in (10, 20, 40, 50)])
    api.wait_idle(pool)
    _rounds(api, pool, [[("i3", "neg"), ("i56", "pos")]])
    assert api.status(pool)["stop"]["reasons"][0].startswith("target: accuracy 1.0000 >= 0.9")
    png = api.get(f"/v1/pools/{pool}/learning_curve.png")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (800, 500)
    svg = api.get(f"/v1/pools/{pool}/learning_curve.svg", params={"metric": "macro_f1"})
    assert svg.status_code == 200 and svg.headers["Content-Type"].startswith("image/svg+xml")
    assert ElementTree.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
    assert_problem(api.get(f"/v1/pools/{pool}/learning_curve.png", params={"metric": "speed"}), 422, "metric")
    assert_problem(api.get("/v1/pools/0123456789abcdef/learning_curve.png"), 404, "pool_id")


def test_unlabeling_gives_the_budget_back_at_once(api):
    X, y = _blobs(40)
    pool = api.create_pool(items=items_of(X), stopping={"budget": 4, "enforce_budget": True},
                           labels=[{"id": f"i{i}", "label": y[i]} for i in (0, 1, 38, 39)])
    assert_problem(api.get(f"/v1/pools/{pool}/query", params={"k": 1}), 409, "stopping.budget")
    assert api.post(f"/v1/pools/{pool}/unlabel", json={"ids": ["i1"]}).status_code == 202
    answer = api.query(pool, k=1, wait=20)
    assert answer["stop"] == {"recommended": False, "reasons": []} and len(answer["items"]) == 1
