"""SIEVE_LABELSTUDIO_BASIC_AUTH: /labelstudio then needs those credentials, as Label Studio sends them."""

from __future__ import annotations

import pytest

from tests.helpers import ApiClient
from tests.labelstudio_support import one
from tests.stack import running_service

AUTHORIZED = one("07_basic_auth_stub.jsonl", "/webhook")  # sent with the header added to the webhook


@pytest.fixture(scope="module")
def guarded(service_env, tmp_path_factory):
    env = {**service_env, "SIEVE_LABELSTUDIO_BASIC_AUTH": "mluser:mlpass"}
    with running_service(env, tmp_path_factory.mktemp("ls-auth-logs"), workers=0) as url:
        yield ApiClient(url)


def test_the_configured_credentials_open_labelstudio_and_nothing_else_does(guarded, redis):
    header = {"Authorization": AUTHORIZED["headers"]["Authorization"]}
    answer = guarded.post("/labelstudio/webhook", json=AUTHORIZED["body"], headers=header)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"  # project 2 is not set up
    setup = one("04_repredict_after_version_bump.jsonl", "/setup")["body"]
    assert guarded.post("/labelstudio/setup", json=setup, headers=header).status_code == 200
    for headers in (
        {},
        {"Authorization": "Basic bWx1c2VyOndyb25n"},
        {"Authorization": "Basic !!"},
        {"Authorization": "Bearer mlpass"},
    ):
        refused = guarded.post("/labelstudio/setup", json=setup, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert guarded.get("/labelstudio/health").status_code == 200
    assert guarded.get("/v1/pools").status_code == 200  # Sieve's own API follows its own keys, not these
