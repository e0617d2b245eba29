"""openapi.yaml is a valid OpenAPI document, generated from the code, and it describes every route."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from openapi_spec_validator import validate

from sieve.service.app import create_app
from sieve.service.state import state_of

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.yaml"


def _app(settings):
    return create_app(settings)


def test_committed_openapi_yaml_is_what_the_code_generates(settings):
    generated = state_of(_app(settings)).openapi_yaml()
    assert COMMITTED.read_text() == generated, "openapi.yaml is stale: run `sieve openapi > openapi.yaml`"


def test_openapi_yaml_is_a_valid_openapi_document():
    validate(yaml.safe_load(COMMITTED.read_text()))


def test_every_route_of_the_app_is_described(settings):
    app = _app(settings)
    described = yaml.safe_load(COMMITTED.read_text())["paths"]
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in described, f"{path} is served but not in openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in described[path], f"{method} {path} is not in openapi.yaml"


def test_the_served_document_is_the_committed_one(settings, redis):
    answer = _app(settings).test_client().get("/openapi.yaml")
    assert answer.status_code == 200 and answer.mimetype == "application/yaml"
    assert answer.get_data(as_text=True) == COMMITTED.read_text()


def test_every_error_answer_is_documented_as_problem_json():
    document = yaml.safe_load(COMMITTED.read_text())
    for name, response in document["components"]["responses"].items():
        if "content" in response:
            assert list(response["content"]) == ["application/problem+json"], name
