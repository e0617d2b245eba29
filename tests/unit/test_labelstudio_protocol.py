"""Label Studio payloads read and written without Flask or Redis: label configs, ids, choices, scores."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.core.errors import InvalidInput
from sieve.core.registry import scores
from sieve.core.training import ALWAYS_RANKED as STRATEGIES
from sieve.labelstudio import protocol
from sieve.labelstudio.config import parse_label_config
from sieve.limits import MAX_FEATURE_DIM, MAX_TEXT_LENGTH
from sieve.origins import OriginError, refuse_address

CONFIG = (
    '<View><Image name="img" value="$image"/><Text name="text" value="$review"/>'
    '<Choices name="sentiment" toName="text" choice="single"><Choice value="Positive"/>'
    '<Choice value="Negative"/><Choice value="Positive"/></Choices></View>'
)


def test_the_label_config_gives_names_field_and_classes_once_each():
    config = parse_label_config(CONFIG)
    assert (config.from_name, config.to_name, config.field) == ("sentiment", "text", "review")
    assert config.classes == ["Positive", "Negative"]


@pytest.mark.parametrize(
    "xml",
    [
        None,
        "",
        "<View",
        '<View><Text name="t" value="$t"/></View>',  # no Choices
        '<View><Choices name="c" toName="t"><Choice value="a"/></Choices></View>',  # no Text
        '<View><Text name="t" value="$t"/><Choices name="c" toName="t"/></View>',  # no Choice
        '<!DOCTYPE v [<!ENTITY a "b">]><View>&a;</View>',  # entities are refused
        '<!DOCTYPE v [<!ENTITY a SYSTEM "file:///etc/passwd">]><View>&a;</View>',
    ],
    ids=["none", "empty", "broken", "no-choices", "no-text", "no-choice", "entity", "external-entity"],
)
def test_a_label_config_sieve_cannot_serve_is_invalid_input_naming_the_field(xml):
    with pytest.raises(InvalidInput) as caught:
        parse_label_config(xml, field="schema")
    assert caught.value.field == "schema"


def test_project_and_task_ids_are_read_from_every_shape_label_studio_uses():
    assert protocol.project_id("12.1795785340") == 12 == protocol.project_id({"id": 12})
    assert protocol.project_id(12) == 12
    for bad in ("12.x", "x", "1\n", "", None, True, -1, {"id": None}, 1.5):
        assert protocol.project_id(bad) is None, bad
    assert protocol.task_id({"id": 7}) == "7" == protocol.task_id(7)
    assert protocol.task_id(True) is None and protocol.task_id("7") is None and protocol.task_id(-1) is None


def test_the_choice_of_an_annotation_prefers_sieves_choices_tag():
    annotation = {
        "result": [
            {"from_name": "topic", "type": "choices", "value": {"choices": ["Sports"]}},
            {"from_name": "sentiment", "type": "choices", "value": {"choices": ["Negative", "Positive"]}},
        ]
    }
    assert protocol.annotation_choice(annotation, "sentiment") == "Negative"
    assert protocol.annotation_choice({**annotation, "was_cancelled": True}, "sentiment") is None
    for odd in (
        {"result": []},
        {"result": "x"},
        {},
        None,
        {"result": [{"type": "choices", "value": {}}]},
        {"result": [{"type": "labels", "value": {"choices": ["x"]}}]},
    ):
        assert protocol.annotation_choice(odd, "sentiment") is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_confidence_reverses_informativeness_within_0_and_1(strategy):
    proba = np.random.default_rng(0).dirichlet([1, 1, 1], size=200)
    informative = scores(strategy, proba) if strategy != "random" else np.random.default_rng(1).random(200)
    confidence = protocol.confidence(strategy, informative, 3)
    assert ((0 <= confidence) & (confidence <= 1)).all()
    # Lowest confidence first is most informative first: the very same order.
    assert np.array_equal(np.argsort(confidence, kind="stable"), np.argsort(-informative, kind="stable"))


def test_confidence_of_a_strategy_without_bounded_scores_is_its_place_in_the_order():
    # auto, batch strategies, committees: only the order is known, so the places are spread over [0, 1].
    assert protocol.confidence("auto", np.array([0.9, 0.2, 0.5, 1.0, 0.7]), 3).tolist() == [0.25, 1.0, 0.75, 0.0, 0.5]


def test_a_prediction_without_a_label_has_an_empty_result():
    assert protocol.prediction(None, 0.5, "v", "s", "t") == {"result": [], "model_version": "v", "score": 0.5}
    with_label = protocol.prediction("Positive", 0.25, "v", "s", "t")
    assert with_label["result"] == [
        {"from_name": "s", "to_name": "t", "type": "choices", "value": {"choices": ["Positive"]}}
    ]


def test_a_task_text_longer_than_the_text_limit_is_no_text():
    assert protocol.task_text({"data": {"text": "a" * MAX_TEXT_LENGTH}}, "text") == "a" * MAX_TEXT_LENGTH
    assert protocol.task_text({"data": {"text": "a" * (MAX_TEXT_LENGTH + 1)}}, "text") is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fe80::1%eth0",
        "::ffff:169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
        # 169.254.169.254 inside NAT64 and 6to4 addresses; a metadata service's IPv6
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "fd00:ec2::254",
    ],
)
def test_no_origin_may_lead_to_a_link_local_or_unspecified_address(address):
    with pytest.raises(OriginError):
        refuse_address(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.9", "93.184.216.34"])
def test_loopback_private_and_public_addresses_may_be_called_when_their_origin_is_allowed(address):
    refuse_address(address)


def test_a_task_id_longer_than_label_studios_is_no_task_id():
    assert protocol.task_id({"id": 10**18 - 1}) == "9" * 18
    assert protocol.task_id({"id": 10**18}) is None and protocol.task_id(int("9" * 4000)) is None


IMAGE = (
    '<View><Image name="image" value="$image"/><Choices name="label" toName="image">'
    '<Choice value="Cat"/><Choice value="Dog"/></Choices></View>'
)


def test_choices_over_an_image_make_a_vector_project_on_the_vector_field():
    config = parse_label_config(IMAGE, vector_field="clip")
    assert config.vectors and (config.from_name, config.to_name, config.field) == ("label", "image", "clip")
    assert config.classes == ["Cat", "Dog"]
    text = parse_label_config(CONFIG, vector_field="clip", vectors=True)  # the backend's extra params
    assert text.vectors and text.field == "clip" and text.to_name == "text"
    assert not parse_label_config(CONFIG).vectors


def test_a_task_vector_is_read_only_when_v1_would_take_it_as_features():
    assert protocol.task_vector({"data": {"e": [1, 2.5]}}, "e").tolist() == [1.0, 2.5]
    assert protocol.task_vector({"data": {"e": [1, 2.5]}}, "e", dim=2).dtype == np.float32
    for bad in (
        [],
        [1, 2, 3],
        [float("nan"), 1],
        [1e39, 1],
        [10**400, 1],
        ["1", 1],
        [True, 1],
        [[1], [2]],
        "1,2",
        None,
    ):
        assert protocol.task_vector({"data": {"e": bad}}, "e", dim=2) is None, bad
    assert protocol.task_vector({"data": {"e": [1] * (MAX_FEATURE_DIM + 1)}}, "e") is None
    assert protocol.task_vector({"data": {}}, "e") is None and protocol.task_vector("x", "e") is None


def test_only_the_names_sieve_gives_a_pools_rankings_are_read_as_its_versions():
    pool = "d17d422e9a0b1c2d"
    assert protocol.ranked_version_of(pool, protocol.model_version(pool, 12)) == 12
    assert protocol.ranked_version_of(pool, protocol.model_version(pool, None)) == 0
    for other in (
        "sieve-00000000-12",
        f"sieve-{pool[:8]}-",
        f"sieve-{pool[:8]}-012",
        f"sieve-{pool[:8]}-1x",
        f"sieve-{pool[:8]}-{10**18}",
        f"x-sieve-{pool[:8]}-1",
        "another-backend-v1",
        None,
        3,
    ):
        assert protocol.ranked_version_of(pool, other) is None
