"""Logs are JSON lines, and a request's lines carry its request id."""

from __future__ import annotations

import json
import logging

import pytest

from sieve import logs


@pytest.fixture
def json_logs():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_request_logs_one_json_line_with_its_request_id_and_route(settings, redis, capsys, json_logs):
    from sieve.service.app import create_app, request_context

    logs.configure("api", context=request_context)
    client = create_app(settings.with_overrides(access_log=True)).test_client()
    assert client.get("/v1/pools/0123456789abcdef", headers={"X-Request-ID": "trace-123"}).status_code == 404
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    (access,) = [line for line in lines if line["logger"] == "sieve.access"]
    assert access["request_id"] == "trace-123" and access["route"] == "/v1/pools/<string:pool_id>"
    assert access["status"] == 404 and access["component"] == "api" and access["level"] == "INFO"
    assert access["duration_ms"] >= 0


def test_without_sieve_access_log_requests_log_no_access_line(settings, redis, capsys, json_logs):
    from sieve.service.app import create_app, request_context

    logs.configure("api", context=request_context)
    client = create_app(settings).test_client()
    assert client.get("/v1/pools/0123456789abcdef").status_code == 404
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert not [line for line in lines if line["logger"] == "sieve.access"]
