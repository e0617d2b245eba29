"""Bad input over real HTTP: a 4xx problem+json naming the field at fault, and the pool left as it was."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from sieve.storage import job_ids
from sieve.storage.keys import PoolKeys
from tests.helpers import ApiClient, items_of

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def pool(api):
    """Forty 4-d items in two blobs, classes neg/pos, one label of each, a model and a ranking built."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, size=(20, 4)), rng.normal(2, 1, size=(20, 4))])
    pool_id = api.create_pool(
        items=items_of(X),
        classes=["neg", "pos"],
        random_state=0,
        labels=[{"id": "i0", "label": "neg"}, {"id": "i39", "label": "pos"}],
    )
    api.wait_idle(pool_id)
    return pool_id


ALL_IDS = [f"i{i}" for i in range(40)]


def assert_problem(answer: requests.Response, status: int, field: str) -> dict:
    """An RFC 9457 answer with this status, naming `field` first."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status
    assert body["type"] == "about:blank" and body["title"] and body["detail"]
    assert body["field"] == field, body
    assert body["errors"][0]["field"] == field and body["errors"][0]["message"], body
    return body


def snapshot(api: ApiClient, redis, pool_id: str) -> dict:
    """What a bad request must not change: counts and versions, the log, the items and their predictions."""
    status = api.status(pool_id)
    predicted = api.post(f"/v1/pools/{pool_id}/predict", json={"ids": ALL_IDS})
    assert predicted.status_code == 200, predicted.text
    return {
        "status": {
            key: status[key]
            for key in (
                "n_items",
                "n_labeled",
                "labels_version",
                "version",
                "dimension",
                "classes_seen",
                "model_version",
            )
        },
        "log": redis.xlen(PoolKeys(pool_id).log),
        "unlabeled": sorted(item["id"] for item in api.query(pool_id, k=1000, lease_seconds=0)["items"]),
        "predictions": predicted.json()["predictions"],
    }


def pool_ids(api: ApiClient) -> set[str]:
    return {p["pool_id"] for p in api.get("/v1/pools").json()["pools"]}


def assert_not_in_pool(api: ApiClient, pool_id: str, ids: list[str]) -> None:
    body = assert_problem(api.post(f"/v1/pools/{pool_id}/predict", json={"ids": ids}), 422, "ids[0]")
    assert all(repr(i) in body["detail"] for i in ids)


def raw(api: ApiClient, method: str, path: str, text: str | bytes) -> requests.Response:
    """A JSON body sent exactly as written: NaN and Infinity literals, broken syntax, odd encodings."""
    return api.request(method, path, data=text, headers=JSON)


# -- the body itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/pools/{pool}/items", "/v1/pools/{pool}/teach", "/v1/pools/{pool}/predict"])
def test_malformed_json_body_is_a_400_naming_the_body_and_pool_is_unchanged(api, redis, pool, path):
    before = snapshot(api, redis, pool)
    assert_problem(raw(api, "POST", path.format(pool=pool), '{"items": [{"id": "x", "features": [1,'), 400, "body")
    assert snapshot(api, redis, pool) == before


def test_malformed_json_body_on_create_is_a_400_and_creates_no_pool(api, pool):
    before = pool_ids(api)
    assert_problem(raw(api, "POST", "/v1/pools", "{'name': 'single quotes'}"), 400, "body")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", '{"labels": [{"id": "i1", "label": "neg"}]}'),
        ("application/x-www-form-urlencoded", "labels=i1"),
        (None, b'{"labels": [{"id": "i1", "label": "neg"}]}'),
    ],
    ids=["text-plain", "form-encoded", "no-content-type"],
)
def test_a_body_that_is_not_declared_json_is_a_415_naming_the_content_type_and_nothing_is_recorded(
    api, redis, pool, content_type, body
):
    before = snapshot(api, redis, pool)
    headers = {"Content-Type": content_type} if content_type else {}
    answer = api.post(f"/v1/pools/{pool}/teach", data=body, headers=headers)
    assert_problem(answer, 415, "Content-Type")
    assert snapshot(api, redis, pool) == before


def test_a_form_encoded_create_is_a_415_and_creates_no_pool(api, pool):
    before = pool_ids(api)
    assert_problem(api.post("/v1/pools", data={"name": "form"}), 415, "Content-Type")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "body", ['[{"id": "i1", "label": "neg"}]', '"labels"', "null", "42"], ids=["array", "string", "null", "number"]
)
def test_a_json_body_that_is_not_an_object_is_a_422_naming_the_body_and_nothing_is_recorded(api, redis, pool, body):
    before = snapshot(api, redis, pool)
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/teach", body), 422, "body")
    assert snapshot(api, redis, pool) == before


@pytest.mark.parametrize("body", ['["items"]', '"a pool"'], ids=["array", "string"])
def test_a_create_body_that_is_not_an_object_is_a_422_and_creates_no_pool(api, pool, body):
    before = pool_ids(api)
    assert_problem(raw(api, "POST", "/v1/pools", body), 422, "body")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000 + "]" * 100_000, '{"random_state": 1' + "0" * 5000 + "}"],
    ids=["nested-100000-deep", "integer-of-5001-digits"],
)
def test_json_that_python_cannot_decode_is_a_400_naming_the_body_not_a_500(api, pool, body):
    before = pool_ids(api)
    assert_problem(raw(api, "POST", "/v1/pools", body), 400, "body")
    assert pool_ids(api) == before


# -- features -------------------------------------------------------------------------------------------------


def _new_items(n: int = 5, dim: int = 4) -> list[dict]:
    return [{"id": f"new{i}", "features": [0.5] * dim} for i in range(n)]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_feature_is_rejected_naming_the_item_and_pool_is_unchanged(api, redis, pool, literal):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[3]["features"][2] = float(literal.replace("Infinity", "inf"))
    text = json.dumps({"items": items})  # Python writes NaN/Infinity literals, as some clients do
    assert literal in text
    body = assert_problem(raw(api, "POST", f"/v1/pools/{pool}/items", text), 422, "items[3].features")
    assert "NaN" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0", "new4"])


def test_nan_feature_in_a_new_pool_is_rejected_naming_the_item_and_creates_no_pool(api, pool):
    before = pool_ids(api)
    items = _new_items()
    items[1]["features"][0] = float("nan")
    assert_problem(raw(api, "POST", "/v1/pools", json.dumps({"items": items})), 422, "items[1].features")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "value",
    ["1e39", "-1e39", "1" + "0" * 39, "1" + "0" * 400],
    ids=["float-1e39", "float-minus-1e39", "integer-1e39", "integer-1e400"],
)
def test_a_feature_beyond_float32_range_is_rejected_naming_the_item_and_pool_is_unchanged(api, redis, pool, value):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[2]["features"][0] = "VALUE"
    text = json.dumps({"items": items}).replace('"VALUE"', value)
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/items", text), 422, "items[2].features")
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0"])


@pytest.mark.parametrize(
    "value", ["0.5", None, True, False, [0.5], {"v": 0.5}], ids=["string", "null", "true", "false", "list", "object"]
)
def test_a_non_number_inside_features_is_rejected_naming_the_item_and_pool_is_unchanged(api, redis, pool, value):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[4]["features"][1] = value
    body = assert_problem(api.post(f"/v1/pools/{pool}/items", json={"items": items}), 422, "items[4].features")
    assert "numbers only" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0"])


def test_ragged_features_in_one_request_are_rejected_naming_the_first_odd_item_and_pool_is_unchanged(api, redis, pool):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[2]["features"] = [0.5] * 3
    body = assert_problem(api.post(f"/v1/pools/{pool}/items", json={"items": items}), 422, "items[2].features")
    assert "same dimension" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before


def test_ragged_features_in_a_new_pool_are_rejected_and_create_no_pool(api, pool):
    before = pool_ids(api)
    items = _new_items()
    items[1]["features"] = [0.5] * 5
    assert_problem(api.post("/v1/pools", json={"items": items}), 422, "items[1].features")
    assert pool_ids(api) == before


def test_features_of_another_dimension_than_the_pools_are_rejected_and_pool_is_unchanged(api, redis, pool):
    before = snapshot(api, redis, pool)
    body = assert_problem(
        api.post(f"/v1/pools/{pool}/items", json={"items": _new_items(dim=5)}), 422, "items[0].features"
    )
    assert "dimension 4" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0"])


def test_an_empty_features_list_is_rejected_naming_the_item_and_pool_is_unchanged(api, redis, pool):
    before = snapshot(api, redis, pool)
    items = [{"id": "new0", "features": []}]
    assert_problem(api.post(f"/v1/pools/{pool}/items", json={"items": items}), 422, "items[0].features")
    assert snapshot(api, redis, pool) == before


def test_features_that_are_not_a_list_are_rejected_naming_the_item(api, redis, pool):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[1]["features"] = "0.5,0.5,0.5,0.5"
    assert_problem(api.post(f"/v1/pools/{pool}/items", json={"items": items}), 422, "items[1].features")
    assert snapshot(api, redis, pool) == before


@pytest.mark.parametrize("path", ["/v1/pools", "/v1/pools/{pool}/items"])
def test_an_empty_items_list_is_rejected_rather_than_fixing_the_pool_dimension_at_zero(api, redis, pool, path):
    before, pools_before = snapshot(api, redis, pool), pool_ids(api)
    assert_problem(api.post(path.format(pool=pool), json={"items": []}), 422, "items")
    assert snapshot(api, redis, pool) == before and pool_ids(api) == pools_before


def test_nan_in_predict_features_is_rejected_naming_the_row(api, redis, pool):
    before = snapshot(api, redis, pool)
    text = json.dumps({"features": [[0.0] * 4, [0.0, float("nan"), 0.0, 0.0]]})
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/predict", text), 422, "features[1]")
    assert snapshot(api, redis, pool) == before


def test_predict_features_of_another_dimension_are_rejected(api, pool):
    assert_problem(api.post(f"/v1/pools/{pool}/predict", json={"features": [[0.0] * 3]}), 422, "features")


# -- ids ------------------------------------------------------------------------------------------------------


def test_duplicate_ids_within_one_request_are_rejected_naming_the_second_and_pool_is_unchanged(api, redis, pool):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[3]["id"] = "new1"
    body = assert_problem(api.post(f"/v1/pools/{pool}/items", json={"items": items}), 422, "items[3].id")
    assert "'new1'" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0", "new1"])


def test_ids_already_in_the_pool_are_a_409_naming_them_and_nothing_is_added(api, redis, pool):
    before = snapshot(api, redis, pool)
    items = _new_items() + [{"id": "i7", "features": [0.0] * 4}, {"id": "i12", "features": [0.0] * 4}]
    body = assert_problem(
        api.post(f"/v1/pools/{pool}/items", json={"items": items}), 409, f"items[{len(items) - 2}].id"
    )
    assert "'i7'" in body["detail"] and "'i12'" in body["detail"]
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0", "new4"])


@pytest.mark.parametrize(
    "bad_id", ["x" * 201, "", 17, None, "\ud800"], ids=["201-chars", "empty", "number", "null", "lone-surrogate"]
)
def test_an_id_that_is_not_1_to_200_characters_of_text_is_rejected_naming_the_item(api, redis, pool, bad_id):
    before = snapshot(api, redis, pool)
    items = _new_items()
    items[1]["id"] = bad_id
    text = json.dumps({"items": items})  # \ud800 travels as the JSON escape a client may send
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/items", text), 422, "items[1].id")
    assert snapshot(api, redis, pool) == before
    assert_not_in_pool(api, pool, ["new0"])


def test_an_id_of_exactly_200_characters_is_accepted(api, pool):
    answer = api.post(f"/v1/pools/{pool}/items", json={"items": [{"id": "x" * 200, "features": [0.0] * 4}]})
    assert answer.status_code == 202, answer.text


# -- teach ----------------------------------------------------------------------------------------------------


def _teach(api, pool, entries) -> requests.Response:
    return api.post(f"/v1/pools/{pool}/teach", json={"labels": entries})


def test_unknown_ids_in_teach_are_a_422_naming_them_and_nothing_is_recorded(api, redis, pool):
    before = snapshot(api, redis, pool)
    body = assert_problem(
        _teach(
            api,
            pool,
            [{"id": "i1", "label": "neg"}, {"id": "ghost", "label": "pos"}, {"id": "phantom", "label": "neg"}],
        ),
        422,
        "labels[1].id",
    )
    assert "'ghost'" in body["detail"] and "'phantom'" in body["detail"] and "'i1'" not in body["detail"]
    assert snapshot(api, redis, pool) == before


def test_duplicate_ids_in_one_teach_call_are_rejected_naming_the_second_and_nothing_is_recorded(api, redis, pool):
    before = snapshot(api, redis, pool)
    body = assert_problem(
        _teach(api, pool, [{"id": "i1", "label": "neg"}, {"id": "i2", "label": "neg"}, {"id": "i1", "label": "pos"}]),
        422,
        "labels[2].id",
    )
    assert "'i1'" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before


def test_a_label_outside_the_pools_classes_is_a_422_naming_it_and_nothing_is_recorded(api, redis, pool):
    before = snapshot(api, redis, pool)
    body = assert_problem(
        _teach(api, pool, [{"id": "i1", "label": "neg"}, {"id": "i2", "label": "maybe"}]), 422, "labels[1].label"
    )
    assert "'maybe'" in body["errors"][0]["message"]
    assert snapshot(api, redis, pool) == before


def test_classes_added_to_a_closed_list_are_accepted_by_teach_and_others_still_refused(api, redis, pool):
    from sieve.storage.pool_store import PoolStore

    PoolStore(redis, pending_ttl_ms=60_000).widen_classes(pool, ["maybe"])
    assert api.status(pool)["classes"] == ["neg", "pos", "maybe"]
    assert _teach(api, pool, [{"id": "i1", "label": "maybe"}]).status_code == 202
    assert_problem(_teach(api, pool, [{"id": "i2", "label": "never"}]), 422, "labels[0].label")


def test_a_pool_stored_before_its_classes_were_kept_encoded_still_refuses_other_labels(api, redis, pool):
    redis.hdel(PoolKeys(pool).meta, "allowed_labels")
    before = snapshot(api, redis, pool)
    assert_problem(_teach(api, pool, [{"id": "i1", "label": "maybe"}]), 422, "labels[0].label")
    assert snapshot(api, redis, pool) == before
    assert _teach(api, pool, [{"id": "i1", "label": "neg"}]).status_code == 202


def test_mixing_string_and_integer_labels_is_rejected_naming_the_first_odd_label(api, redis, pool):
    before = snapshot(api, redis, pool)
    assert_problem(
        _teach(api, pool, [{"id": "i1", "label": "neg"}, {"id": "i2", "label": "neg"}, {"id": "i3", "label": 1}]),
        422,
        "labels[2].label",
    )
    assert snapshot(api, redis, pool) == before


def test_mixing_string_and_integer_labels_in_a_new_pool_is_rejected_and_creates_no_pool(api, pool):
    before = pool_ids(api)
    items = _new_items(2)
    answer = api.post(
        "/v1/pools", json={"items": items, "labels": [{"id": "new0", "label": 0}, {"id": "new1", "label": "one"}]}
    )
    assert_problem(answer, 422, "labels[1].label")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "label",
    [1.5, 1.0, True, False, None, ["neg"], {"name": "neg"}, ""],
    ids=["float", "integral-float", "true", "false", "null", "list", "object", "empty"],
)
def test_a_label_that_is_not_a_string_or_integer_is_rejected_naming_it(api, redis, pool, label):
    before = snapshot(api, redis, pool)
    assert_problem(
        _teach(api, pool, [{"id": "i1", "label": "neg"}, {"id": "i2", "label": label}]), 422, "labels[1].label"
    )
    assert snapshot(api, redis, pool) == before


@pytest.mark.parametrize(
    "bad_id", ["x" * 201, "", 17, "\ud800"], ids=["201-chars", "empty", "number", "lone-surrogate"]
)
def test_a_teach_id_that_is_not_1_to_200_characters_of_text_is_rejected_naming_it(api, redis, pool, bad_id):
    before = snapshot(api, redis, pool)
    text = json.dumps({"labels": [{"id": "i1", "label": "neg"}, {"id": bad_id, "label": "pos"}]})
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/teach", text), 422, "labels[1].id")
    assert snapshot(api, redis, pool) == before


def test_an_empty_labels_list_is_rejected_naming_labels(api, redis, pool):
    before = snapshot(api, redis, pool)
    assert_problem(_teach(api, pool, []), 422, "labels")
    assert snapshot(api, redis, pool) == before


def test_a_teach_without_labels_is_rejected_naming_labels(api, redis, pool):
    before = snapshot(api, redis, pool)
    assert_problem(api.post(f"/v1/pools/{pool}/teach", json={}), 422, "labels")
    assert snapshot(api, redis, pool) == before


# -- query ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k",
    ["0", "-1", "1001", "1" + "0" * 30, "ten", "2.5", ""],
    ids=["zero", "negative", "1001", "1e30", "word", "fraction", "empty"],
)
def test_k_outside_1_to_1000_or_not_an_integer_is_a_422_naming_k(api, pool, k):
    assert_problem(api.get(f"/v1/pools/{pool}/query", params={"k": k}), 422, "k")


def test_an_unknown_strategy_is_a_422_naming_strategy(api, pool):
    body = assert_problem(api.get(f"/v1/pools/{pool}/query", params={"strategy": "oracle"}), 422, "strategy")
    assert "least_confidence" in body["errors"][0]["message"]


@pytest.mark.parametrize("wait", ["-1", "30.5", "nan", "inf", "soon"])
def test_wait_outside_0_to_30_seconds_or_not_a_number_is_a_422_naming_wait(api, pool, wait):
    assert_problem(api.get(f"/v1/pools/{pool}/query", params={"wait": wait}), 422, "wait")


# -- the model spec and the create body -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": {"type": "svm"}}, "model.type"),
        ({"model": {"type": 3}}, "model.type"),
        ({"model": {"params": {"gamma": 1}}}, "model.params.gamma"),
        ({"model": {"params": {"n_jobs": 4}}}, "model.params.n_jobs"),
        ({"model": {"type": "random_forest", "params": {"random_state": 1}}}, "model.params.random_state"),
        ({"model": {"params": {"C": -1}}}, "model.params.C"),
        ({"model": {"params": {"C": "lots"}}}, "model.params.C"),
        ({"model": {"type": "random_forest", "params": {"n_estimators": 100_000}}}, "model.params.n_estimators"),
        ({"model": {"type": "sgd_classifier", "params": {"loss": "hinge"}}}, "model.params.loss"),
        ({"model": {"params": {"penalty": "l1", "solver": "lbfgs"}}}, "model.params"),
        ({"model": {"params": {"C": [[[[[1]]]]]}}}, "model.params.C"),
        ({"model": {"kind": "svm"}}, "model.kind"),
        ({"model": {"params": [1]}}, "model.params"),
        ({"model": "svm"}, "model"),
        ({"model": {"standardize": "yes"}}, "model.standardize"),
    ],
    ids=[
        "unknown-type",
        "type-not-a-string",
        "unknown-param",
        "forbidden-n_jobs",
        "forbidden-random_state",
        "C-negative",
        "C-a-word",
        "n_estimators-too-many",
        "sgd-without-probabilities",
        "l1-with-lbfgs",
        "param-nested-too-deep",
        "unknown-model-key",
        "params-not-an-object",
        "model-not-an-object",
        "standardize-not-a-boolean",
    ],
)
def test_a_bad_model_spec_is_a_422_naming_the_model_field_and_creates_no_pool(api, pool, body, field):
    before = pool_ids(api)
    assert_problem(api.post("/v1/pools", json=body), 422, field)
    assert pool_ids(api) == before


@pytest.mark.parametrize("leaves", [10**7, 10**18, 10**30])
def test_a_forest_with_a_huge_max_leaf_nodes_is_a_422_naming_it_not_a_500_or_gigabytes(api, pool, leaves):
    before = pool_ids(api)
    body = assert_problem(
        api.post("/v1/pools", json={"model": {"type": "random_forest", "params": {"max_leaf_nodes": leaves}}}),
        422,
        "model.params.max_leaf_nodes",
    )
    assert "1,000" in body["detail"]
    assert pool_ids(api) == before


def test_sgd_asked_for_100000_epochs_without_a_tolerance_is_a_422_naming_max_iter(api, pool):
    before = pool_ids(api)
    body = assert_problem(
        api.post("/v1/pools", json={"model": {"type": "sgd_classifier", "params": {"max_iter": 100_000, "tol": None}}}),
        422,
        "model.params.max_iter",
    )
    assert "1,000" in body["detail"]
    assert pool_ids(api) == before


def test_a_model_param_nested_hundreds_deep_is_a_422_not_a_500(api, pool):
    before = pool_ids(api)
    text = '{"model": {"params": {"C": ' + "[" * 900 + "]" * 900 + "}}}"
    assert_problem(raw(api, "POST", "/v1/pools", text), 422, "model.params.C")
    assert pool_ids(api) == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"strategy": "oracle"}, "strategy"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": 1.5}, "random_state"),
        ({"random_state": True}, "random_state"),
        ({"classes": []}, "classes"),
        ({"classes": ["a", "a"]}, "classes"),
        ({"classes": ["a", 1.5]}, "classes[1]"),
        ({"items": [{"id": "a", "features": [1.0]}], "labels": [{"id": "b", "label": "x"}]}, "labels[0].id"),
        (
            {"items": [{"id": "a", "features": [1.0]}], "classes": ["x"], "labels": [{"id": "a", "label": "y"}]},
            "labels[0].label",
        ),
        ({"items": [{"id": "a", "features": [1.0], "colour": "red"}]}, "items[0].colour"),
        ({"items": [{"id": "a"}]}, "items[0].features"),
        ({"items": ["a"]}, "items[0]"),
        ({"items": {"a": [1.0]}}, "items"),
    ],
    ids=[
        "unknown-field",
        "name-not-a-string",
        "name-too-long",
        "name-lone-surrogate",
        "unknown-strategy",
        "random_state-negative",
        "random_state-fraction",
        "random_state-boolean",
        "classes-empty",
        "classes-repeated",
        "class-a-float",
        "label-of-an-unknown-item",
        "label-outside-classes",
        "unknown-item-field",
        "item-without-features",
        "item-not-an-object",
        "items-not-a-list",
    ],
)
def test_a_bad_create_body_is_a_422_naming_the_field_and_creates_no_pool(api, pool, body, field):
    before = pool_ids(api)
    assert_problem(raw(api, "POST", "/v1/pools", json.dumps(body)), 422, field)
    assert pool_ids(api) == before


# -- size -----------------------------------------------------------------------------------------------------


def test_a_body_over_the_configured_maximum_is_a_413_naming_the_body(settings, redis):
    from sieve.service.app import create_app

    app = create_app(settings.with_overrides(max_content_length=1024 * 1024))
    client = app.test_client()
    items = [{"id": f"i{i}", "features": [0.123456789] * 100} for i in range(2000)]
    text = json.dumps({"items": items})
    assert len(text) > 2 * 1024 * 1024
    answer = client.post("/v1/pools", data=text, headers=JSON)
    assert answer.status_code == 413, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == PROBLEM
    body = answer.get_json()
    assert body["status"] == 413 and body["field"] == "body" and body["errors"][0]["field"] == "body"
    assert "1048576" in body["errors"][0]["message"]
    assert client.get("/v1/pools").get_json()["pools"] == []


def test_a_body_over_64_mib_is_a_413_over_real_http(api, pool):
    before = pool_ids(api)
    limit = 64 * 1024 * 1024
    # Valid JSON, so only the size is at fault; the server must refuse it without reading it all.
    text = b'{"name": "' + b"x" * (limit + 1024) + b'"}'
    try:
        answer = api.post("/v1/pools", data=text, headers=JSON, timeout=60)
    except requests.ConnectionError as error:  # the server may close before the client has sent it all
        pytest.skip(f"the server closed the connection before answering: {error}")
    body = assert_problem(answer, 413, "body")
    assert str(limit) in body["errors"][0]["message"]
    assert pool_ids(api) == before


# -- unknown pools and jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/items", {"items": [{"id": "a", "features": [0.0] * 4}]}),
        ("GET", "/query", None),
        ("POST", "/teach", {"labels": [{"id": "a", "label": "neg"}]}),
        ("POST", "/predict", {"features": [[0.0] * 4]}),
        ("POST", "/predict", {"ids": ["a"]}),
        ("POST", "/release", {"ids": ["a"]}),
    ],
    ids=["status", "delete", "add-items", "query", "teach", "predict-features", "predict-ids", "release"],
)
def test_an_unknown_pool_is_a_404_naming_pool_id_on_every_endpoint(api, pool, method, path, body):
    before = pool_ids(api)
    answer = api.request(method, f"/v1/pools/0123456789abcdef{path}", json=body)
    problem = assert_problem(answer, 404, "pool_id")
    assert "0123456789abcdef" in problem["detail"]
    assert pool_ids(api) == before


def test_an_unknown_job_is_a_404_naming_job_id(api):
    assert_problem(api.get(f"/v1/jobs/{job_ids.refresh('0123456789abcdef', 1)}"), 404, "job_id")


# -- predict --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"features": [[0.0] * 4], "ids": ["i1"]}], ids=["neither", "both"])
def test_predict_needs_exactly_one_of_features_or_ids(api, pool, body):
    body = assert_problem(api.post(f"/v1/pools/{pool}/predict", json=body), 422, "features")
    assert "exactly one of features, texts or ids" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "bad_id", ["x" * 201, "", 17, "\ud800"], ids=["201-chars", "empty", "number", "lone-surrogate"]
)
def test_predict_with_an_id_that_is_not_1_to_200_characters_of_text_is_a_422_naming_it(api, pool, bad_id):
    text = json.dumps({"ids": ["i1", bad_id]})
    assert_problem(raw(api, "POST", f"/v1/pools/{pool}/predict", text), 422, "ids[1]")


def test_predict_with_unknown_ids_is_a_422_naming_them(api, redis, pool):
    before = snapshot(api, redis, pool)
    body = assert_problem(
        api.post(f"/v1/pools/{pool}/predict", json={"ids": ["i1", "ghost", "i2", "phantom"]}), 422, "ids[1]"
    )
    assert "'ghost'" in body["detail"] and "'phantom'" in body["detail"] and "'i1'" not in body["detail"]
    assert snapshot(api, redis, pool) == before


@pytest.mark.parametrize(
    "params, field",
    [
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"lease_seconds": "nan"}, "lease_seconds"),
        ({"lease_seconds": 10**6}, "lease_seconds"),
        ({"annotator": ""}, "annotator"),
        ({"annotator": "x" * 201}, "annotator"),
    ],
)
def test_bad_lease_arguments_are_rejected_naming_them(api, redis, pool, params, field):
    before = snapshot(api, redis, pool)
    assert_problem(api.get(f"/v1/pools/{pool}/query", params=params), 422, field)
    assert snapshot(api, redis, pool) == before


@pytest.mark.parametrize(
    "body, field", [({}, "ids"), ({"ids": []}, "ids"), ({"ids": ["i1"], "annotator": ""}, "annotator")]
)
def test_bad_release_bodies_are_rejected_naming_the_field(api, redis, pool, body, field):
    assert_problem(api.post(f"/v1/pools/{pool}/release", json=body), 422, field)


@pytest.mark.parametrize("length", [5_000, 10_000])
def test_a_path_too_long_for_the_server_is_a_414_problem_naming_the_url(api, length):
    answer = requests.get(f"{api.base_url}/v1/pools/{'a' * length}", timeout=10)
    assert_problem(answer, 414, "url")


@pytest.mark.parametrize(
    "raw, status, field",
    [
        (b"GARBAGE\r\n\r\n", 400, "request line"),
        (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "method"),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431, "headers"),
    ],
    ids=["bad request line", "bad method", "header too large"],
)
def test_a_request_the_server_refuses_before_the_app_is_a_problem_naming_its_part(api, raw, status, field):
    address = urlsplit(api.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(raw)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == str(status), reply
    assert f"Content-Type: {PROBLEM}" in lines[1:]
    problem = json.loads(body)
    assert problem["status"] == status and problem["field"] == field and problem["title"], problem
