"""Stopping over real HTTP with real workers: budget, plateau, the stop flag, the curve, bad specs, and a
policy changed after creation."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from tests.helpers import items_of
from tests.integration.test_bad_input import assert_problem, raw


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
    pool = api.create_pool(
        items=items_of(X),
        random_state=0,
        stopping={"plateau": {"kappa": 0.99, "window": 3}},
        labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}],
    )
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
    pool = api.create_pool(
        items=items_of(X), random_state=0, labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}]
    )
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


@pytest.mark.parametrize(
    "stopping, field",
    [
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
        ({"plateau": {"gain": 0}}, "stopping.plateau.gain"),
        ({"plateau": {"labels": 0}}, "stopping.plateau.labels"),
        ({"audit": {"rate": 0.7}}, "stopping.audit.rate"),
        ({"audit": {"rate": -0.1}}, "stopping.audit.rate"),
        ({"audit": {"rate": "NaN"}}, "stopping.audit.rate"),
        ({"audit": {}}, "stopping.audit.rate"),
        ({"patience": 3}, "stopping.patience"),
        ("soon", "stopping"),
    ],
)
def test_a_bad_stopping_spec_is_a_422_naming_the_field(api, stopping, field):
    assert_problem(api.post("/v1/pools", json={"stopping": stopping}), 422, field)


def _patch(api, pool, stopping) -> dict:
    answer = api.patch(f"/v1/pools/{pool}", json={"stopping": stopping})
    assert answer.status_code == 200, answer.text
    return answer.json()


NOT_YET = {"recommended": False, "reasons": []}


def test_a_budget_set_after_creation_applies_at_once_and_lifting_it_opens_queries_again(api):
    X, y = _blobs(40)
    pool = api.create_pool(items=items_of(X), labels=[{"id": f"i{i}", "label": y[i]} for i in (0, 1, 38, 39)])
    assert api.query(pool, k=1, wait=20)["stop"] == NOT_YET
    version = api.status(pool)["version"]
    answer = _patch(api, pool, {"budget": 3, "plateau": None})
    spent = {"recommended": True, "reasons": ["budget: 4 labels spent of 3"]}
    # The answer is the pool's status, already under the new policy.
    assert answer.keys() == api.status(pool).keys() and answer["version"] == version + 1
    assert answer["stopping"] == {"budget": 3, "enforce_budget": False, "target": None, "plateau": None, "audit": None}
    assert answer["stop"] == spent and api.status(pool)["stop"] == spent
    served = api.query(pool, k=1)
    assert served["stop"] == spent and len(served["items"]) == 1
    _patch(api, pool, {"budget": 3, "enforce_budget": True})
    assert (
        "budget"
        in assert_problem(api.get(f"/v1/pools/{pool}/query", params={"k": 1}), 409, "stopping.budget")["detail"]
    )
    lifted = _patch(api, pool, {})
    assert lifted["stopping"] == {
        "budget": None,
        "enforce_budget": False,
        "target": None,
        "plateau": {"kappa": 0.99, "window": 3, "gain": 0.01, "labels": 100},
        "audit": None,
    }
    served = api.query(pool, k=1)
    assert served["stop"] == NOT_YET and len(served["items"]) == 1
    # The policy the pool already has is no change: no new version, no refresh.
    assert _patch(api, pool, {"plateau": {"window": 3}})["version"] == lifted["version"]
    assert api.wait_idle(pool)["stop"] == NOT_YET


def test_target_and_plateau_changed_after_creation_are_decided_again_over_the_history(api):
    X, y = _blobs()
    # Ten evaluation items, all predicted right: accuracy 1.0, its 90 % Wilson interval [0.7871, 1].
    target = {"metric": "accuracy", "value": 0.55}
    flat = {"gain": 0.5, "labels": 2}  # the gain bound against the model 2 labels before is 0.2129
    pool = api.create_pool(
        items=items_of(X),
        random_state=0,
        stopping={"target": target, "plateau": flat},
        labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}]
        + [{"id": f"i{i}", "label": y[i], "split": "eval"} for i in (10, 15, 20, 25, 30, 170, 175, 180, 185, 190)],
    )
    api.wait_idle(pool)
    _rounds(api, pool, [[(f"i{i}", y[i]), (f"i{199 - i}", y[199 - i])] for i in (1, 2, 3)])
    before = api.get(f"/v1/pools/{pool}/history").json()["versions"]
    assert [r.split(":")[0] for r in api.status(pool)["stop"]["reasons"]] == ["target", "plateau"]

    assert _patch(api, pool, {"target": None, "plateau": None})["stop"] == NOT_YET
    assert api.query(pool, k=1)["stop"] == NOT_YET
    history = api.get(f"/v1/pools/{pool}/history").json()
    assert history["stop"] == NOT_YET and history["stopping"]["plateau"] is None
    # Earlier versions keep what the rules said then.
    assert [v["stop"] for v in history["versions"][:-1]] == [v["stop"] for v in before[:-1]]
    assert any(v["stop"]["recommended"] for v in history["versions"][:-1])

    (reason,) = _patch(api, pool, {"target": target, "plateau": None})["stop"]["reasons"]
    assert reason.startswith("target: accuracy >= 0.7871 (90 % lower bound) >= 0.55")
    higher = {"metric": "accuracy", "value": 0.8}
    assert not _patch(api, pool, {"target": higher, "plateau": None})["stop"]["recommended"]
    (reason,) = _patch(api, pool, {"plateau": flat})["stop"]["reasons"]
    assert reason.startswith("plateau: accuracy gained at most +0.2129")
    # Ten items say too little to rule out a gain of 0.2.
    assert _patch(api, pool, {"plateau": {"gain": 0.2, "labels": 2}})["stop"] == NOT_YET
    # The refresh each change asks for reviews the latest model again under the policy of its time.
    settled = api.wait_idle(pool)
    history = api.get(f"/v1/pools/{pool}/history").json()
    assert settled["stop"] == NOT_YET and history["versions"][-1]["stop"] == NOT_YET
    assert len(history["versions"]) == len(before)


def test_a_refresh_that_raced_a_policy_change_is_superseded_by_the_one_the_change_asks_for(api, redis):
    from sieve.core.history import Review
    from sieve.storage.pool_store import PoolConfig, PoolStore
    from sieve.storage.refresh import Published, RefreshStore

    X, y = _blobs(40)
    # Made in storage, so that no worker refreshes it before this test has claimed its first refresh.
    pool, first_job = PoolStore(redis, pending_ttl_ms=60_000).create(
        PoolConfig(name=None, model={"type": "logistic_regression"}, strategy="margin", random_state=0, classes=None),
        [f"i{i}" for i in range(40)],
        X.astype(np.float32),
        ["i0", "i1", "i38", "i39"],
        [y[0], y[1], y[38], y[39]],
    )
    refresh = RefreshStore(redis)
    status, snapshot = refresh.claim(pool, first_job, 60_000)
    assert status == "ok" and snapshot.policy.plateau

    assert _patch(api, pool, {"plateau": None})["stop"] == NOT_YET
    # The raced refresh publishes what it decided under the policy it read.
    stale = {"recommended": True, "reasons": ["plateau: decided under the old policy"]}
    entry = {
        "model_version": snapshot.labels_version,
        "n_labels": 4,
        "n_eval": 0,
        "metrics": None,
        "kappa_with_previous": None,
        "stop_set_size": 36,
        "fit_seconds": 0.0,
        "score_seconds": 0.0,
        "eval_seconds": 0.0,
        "finished_at": 0.0,
        "stop": stale,
    }
    published = Published(
        version=snapshot.version,
        labels_version=snapshot.labels_version,
        model_version=snapshot.labels_version,
        model_classes=["neg", "pos"],
        model_blob=None,
        proba=np.full((40, 2), 0.5, dtype=np.float32),
        n_ranked=36,
        rankings={},
        finished_at=0.0,
        duration_s=0.0,
        cold_start=False,
        review=Review(
            entry=entry, model_stop=stale, stop_rows=np.arange(2, 38), stop_labels=["neg"] * 18 + ["pos"] * 18
        ),
    )
    assert refresh.publish(pool, first_job, published) == "ok"
    # The refresh the change asked for has been waiting for that one; it decides again under the new policy.
    settled = api.wait_idle(pool)
    assert settled["ranked_version"] > snapshot.version and settled["stop"] == NOT_YET
    assert api.get(f"/v1/pools/{pool}/history").json()["versions"][-1]["stop"] == NOT_YET


@pytest.mark.parametrize(
    "body, field",
    [
        ({"stopping": {"patience": 3}}, "stopping.patience"),
        ({"stopping": {"budget": 0}}, "stopping.budget"),
        ({"stopping": {"enforce_budget": True}}, "stopping.enforce_budget"),
        ({"stopping": {"plateau": {"window": 0}}}, "stopping.plateau.window"),
        ({"stopping": {"target": {"metric": "speed", "value": 0.9}}}, "stopping.target.metric"),
        ('{"stopping": {"budget": NaN}}', "stopping.budget"),
        ('{"stopping": {"target": {"metric": "accuracy", "value": NaN}}}', "stopping.target.value"),
        ('{"stopping": {"plateau": {"kappa": NaN}}}', "stopping.plateau.kappa"),
        ({}, "stopping"),
        ({"stopping": None}, "stopping"),
        ({"stopping": "soon"}, "stopping"),
        ({"name": "renamed", "stopping": {}}, "name"),
    ],
)
def test_a_bad_stopping_change_is_a_422_naming_the_field_and_changes_nothing(api, body, field):
    pool = api.create_pool(stopping={"budget": 10, "enforce_budget": True})
    before = api.status(pool)
    path = f"/v1/pools/{pool}"
    answer = raw(api, "PATCH", path, body) if isinstance(body, str) else api.patch(path, json=body)
    assert_problem(answer, 422, field)
    after = api.status(pool)
    assert (after["stopping"], after["version"]) == (before["stopping"], before["version"])


def test_changing_the_stopping_policy_of_a_pool_that_does_not_exist_is_a_404(api):
    assert_problem(api.patch("/v1/pools/0123456789abcdef", json={"stopping": {}}), 404, "pool_id")


def test_a_bad_split_is_a_422_naming_the_field(api):
    pool = api.create_pool(items=items_of(np.zeros((2, 2))))
    answer = api.post(f"/v1/pools/{pool}/teach", json={"labels": [{"id": "i0", "label": "a", "split": "test"}]})
    assert_problem(answer, 422, "labels[0].split")


def test_the_learning_curve_is_a_png_of_the_expected_size_and_an_svg(api):
    X, y = _blobs(60)
    pool = api.create_pool(
        items=items_of(X),
        random_state=0,
        stopping={"target": {"metric": "accuracy", "value": 0.55}},
        labels=[{"id": f"i{i}", "label": y[i]} for i in (0, 1, 2, 57, 58, 59)]
        + [{"id": f"i{i}", "label": y[i], "split": "eval"} for i in (10, 12, 14, 16, 18, 40, 42, 44, 46, 48)],
    )
    api.wait_idle(pool)
    _rounds(api, pool, [[("i3", "neg"), ("i56", "pos")]])
    assert api.status(pool)["stop"]["reasons"][0].startswith("target: accuracy >= 0.7871 (90 % lower bound) >= 0.55")
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
    pool = api.create_pool(
        items=items_of(X),
        stopping={"budget": 4, "enforce_budget": True},
        labels=[{"id": f"i{i}", "label": y[i]} for i in (0, 1, 38, 39)],
    )
    assert_problem(api.get(f"/v1/pools/{pool}/query", params={"k": 1}), 409, "stopping.budget")
    assert api.post(f"/v1/pools/{pool}/unlabel", json={"ids": ["i1"]}).status_code == 202
    answer = api.query(pool, k=1, wait=20)
    assert answer["stop"] == {"recommended": False, "reasons": []} and len(answer["items"]) == 1


def _svg_titles(svg: bytes) -> list[str]:
    # The drawn title is glyph paths in an SVG; the metadata title is the same string, as text (beside
    # the title of the creating software).
    return [e.text for e in ElementTree.fromstring(svg).iter("{http://purl.org/dc/elements/1.1/}title")]


def test_the_learning_curve_is_titled_with_the_pools_name_or_else_its_id(api):
    named = api.create_pool(name="wine reviews <batch 7>", items=items_of(np.zeros((2, 2))))
    unnamed = api.create_pool(items=items_of(np.zeros((2, 2))))
    assert "wine reviews <batch 7>" in _svg_titles(api.get(f"/v1/pools/{named}/learning_curve.svg").content)
    assert f"pool {unnamed}" in _svg_titles(api.get(f"/v1/pools/{unnamed}/learning_curve.svg").content)


def test_the_curve_figure_draws_the_title_it_is_given():
    from sieve.curves import figure

    assert figure([], "accuracy", None, "wine reviews").axes[0].get_title() == "wine reviews"


def test_the_curve_draws_the_accuracy_interval_as_a_band_and_no_band_for_another_metric():
    from sieve.curves import figure

    versions = [
        {
            "n_labels": n,
            "metrics": {"accuracy": acc, "macro_f1": acc},
            "estimate": {
                "metric": "accuracy",
                "value": acc,
                "low": acc - 0.1,
                "high": acc + 0.05,
                "n": 50,
                "level": 0.9,
            },
        }
        for n, acc in [(10, 0.6), (20, 0.7), (30, 0.75)]
    ]
    axes = figure(versions, "accuracy", None).axes[0]
    (band,) = axes.collections
    assert "90% interval" in axes.get_legend_handles_labels()[1]
    assert band.get_paths()[0].vertices[:, 1].min() == pytest.approx(0.5)
    assert not figure(versions, "macro_f1", None).axes[0].collections


def test_audit_items_are_served_marked_and_their_labels_give_the_estimate_the_target_reads(api):
    X, y = _blobs()
    pool = api.create_pool(
        items=items_of(X),
        random_state=0,
        stopping={"audit": {"rate": 0.5}, "target": {"metric": "accuracy", "value": 0.6}, "plateau": None},
        labels=[{"id": "i0", "label": "neg"}, {"id": "i199", "label": "pos"}],
    )
    assert api.wait_idle(pool)["estimate"] is None  # two labels: no evaluation item, no cross-validation
    answer = api.query(pool, k=20)
    audit = [item["id"] for item in answer["items"] if item["audit"]]
    assert len(answer["items"]) == 20 and len(audit) == 10
    by_id = {f"i{i}": label for i, label in enumerate(y)}
    api.teach(pool, [(item["id"], by_id[item["id"]]) for item in answer["items"]])  # no split named
    status = api.wait_idle(pool)
    assert (status["n_labeled"], status["n_eval"]) == (12, 10)
    # Far-apart blobs: ten of ten right, whose 90 % Wilson interval starts at 0.7871.
    estimate = status["estimate"]
    assert (estimate["source"], estimate["n"], estimate["value"], estimate["biased"]) == ("audit", 10, 1.0, False)
    assert estimate["low"] == pytest.approx(0.7871, abs=1e-4)
    (reason,) = status["stop"]["reasons"]
    assert reason == "target: accuracy >= 0.7871 (90 % lower bound) >= 0.6"
    history = api.get(f"/v1/pools/{pool}/history").json()
    assert history["versions"][-1]["estimate"] == estimate
    # The value passes 0.8, the lower bound does not: no stop.
    higher = {"metric": "accuracy", "value": 0.8}
    assert _patch(api, pool, {"audit": {"rate": 0.5}, "target": higher})["stop"] == NOT_YET
    # Without an audit rate nothing is marked.
    _patch(api, pool, {})
    assert not any(item["audit"] for item in api.query(pool, k=6)["items"])
