"""CORS: off by default; with SIEVE_CORS_ORIGINS, preflights are answered and every answer to an allowed
origin (problems included) says so, whatever auth requires."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from sieve.embedded import free_port
from sieve.service.app import create_app
from sieve.storage.api_keys import ApiKeys
from tests.stack import _answers, wait_until

FRONT_END = "https://label.example.com"
PREFLIGHT = {
    "Origin": FRONT_END,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, x-request-id",
}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Credentials",
)


def _client(settings, origins: tuple[str, ...]):
    return create_app(settings.with_overrides(cors_origins=origins)).test_client()


def _no_cors(answer) -> None:
    assert not [name for name in CORS_HEADERS if name in answer.headers], dict(answer.headers)


def test_without_the_setting_no_answer_carries_a_cors_header(settings, redis):
    client = _client(settings, ())
    _no_cors(client.get("/v1/pools", headers={"Origin": FRONT_END}))
    preflight = client.options("/v1/pools", headers=PREFLIGHT)
    _no_cors(preflight)
    assert "Origin" not in preflight.headers.get("Vary", "")


def test_a_preflight_from_an_allowed_origin_is_answered_before_auth(settings, redis):
    ApiKeys(redis).create("acme", "")  # keys required: the preflight still carries none
    answer = _client(settings, (FRONT_END, "http://localhost:5173")).options("/v1/pools/abc/teach", headers=PREFLIGHT)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert set(answer.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "PATCH", "DELETE"}
    allowed = answer.headers["Access-Control-Allow-Headers"].split(", ")
    assert allowed == ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"]
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in answer.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_answers_and_problems_to_an_allowed_origin_carry_it(settings, redis):
    client = _client(settings, (FRONT_END,))
    listed = client.get("/v1/pools", headers={"Origin": FRONT_END})
    assert listed.status_code == 200 and listed.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "Origin" in listed.headers["Vary"]
    assert set(listed.headers["Access-Control-Expose-Headers"].split(", ")) >= {"Location", "Retry-After"}
    assert "Access-Control-Allow-Methods" not in listed.headers  # only preflights say what may be sent

    missing = client.get("/v1/pools/nope", headers={"Origin": FRONT_END})
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert missing.headers["Access-Control-Allow-Origin"] == FRONT_END

    bad = client.post("/v1/pools", data="{", headers={"Origin": FRONT_END, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.headers["Access-Control-Allow-Origin"] == FRONT_END


def test_a_refusal_of_auth_to_an_allowed_origin_carries_it(settings, redis):
    ApiKeys(redis).create("acme", "")
    refused = _client(settings, (FRONT_END,)).get("/v1/pools", headers={"Origin": FRONT_END})
    # The front end can read why: a 401 problem it may show, not an opaque network error.
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == FRONT_END


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://label.example.com", "null"])
def test_another_origin_gets_no_cors_header_but_vary(settings, redis, origin):
    client = _client(settings, (FRONT_END,))
    answer = client.get("/v1/pools", headers={"Origin": origin})
    _no_cors(answer)
    assert "Origin" in answer.headers["Vary"]
    _no_cors(client.options("/v1/pools", headers={**PREFLIGHT, "Origin": origin}))


def test_origins_match_as_browsers_send_them(settings, redis):
    client = _client(settings, ("http://[::1]:8080", "http://localhost:5173"))
    assert client.get("/healthz", headers={"Origin": "http://[::1]:8080"}).headers["Access-Control-Allow-Origin"]
    # An IPv6 origin's brackets are characters, not a pattern.
    _no_cors(client.get("/healthz", headers={"Origin": "http://1:8080"}))


def test_any_origin_is_answered_with_a_star_and_no_vary(settings, redis):
    answer = _client(settings, ("*",)).get("/healthz", headers={"Origin": "https://anyone.example.org"})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Origin" not in answer.headers.get("Vary", "")
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_sieve_api_over_http_answers_a_preflight_and_a_request_from_its_listed_origin(service_env, redis, tmp_path):
    port = free_port()
    env = {**service_env, "SIEVE_CORS_ORIGINS": f"{FRONT_END},http://localhost:5173"}
    command = [sys.executable, "-m", "sieve.cli", "api", "--port", str(port), "--processes", "1"]
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "api.log", "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(url), 30, "the API to answer")
        preflight = requests.options(f"{url}/v1/pools", headers=PREFLIGHT, timeout=10)
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == FRONT_END
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        created = requests.post(f"{url}/v1/pools", json={"items": "no"}, headers={"Origin": FRONT_END}, timeout=10)
        assert created.status_code == 422 and created.headers["Access-Control-Allow-Origin"] == FRONT_END
        other = requests.get(f"{url}/v1/pools", headers={"Origin": "https://evil.example.com"}, timeout=10)
        assert other.ok and "Access-Control-Allow-Origin" not in other.headers
    finally:
        process.terminate()
        process.wait(15)
