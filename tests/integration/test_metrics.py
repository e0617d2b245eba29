"""/metrics over real HTTP from a multi-process-mode gunicorn, with real workers; who may read it."""

from __future__ import annotations

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from sieve.storage.api_keys import ApiKeys
from tests.helpers import items_of
from tests.integration.test_bad_input import PROBLEM

FAMILIES = {
    "sieve_http_requests",
    "sieve_http_request_duration_seconds",
    "sieve_queue_depth",
    "sieve_refresh_jobs",
    "sieve_refresh_failures",
    "sieve_refresh_duration_seconds",
    "sieve_pools",
    "sieve_pool_items",
    "sieve_pool_labeled",
    "sieve_pool_eval",
}


def _scrape(answer) -> dict:
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def _refused(answer) -> dict:
    """A Flask test client's 401 problem naming the Authorization header."""
    assert answer.status_code == 401 and answer.headers["Content-Type"] == PROBLEM, answer.text
    assert answer.json["field"] == "Authorization"
    return answer.json


def _value(family, **labels) -> float:
    return next(
        s.value
        for s in family.samples
        if all(s.labels.get(k) == v for k, v in labels.items())
        and s.name == family.name + ("_total" if family.type == "counter" else "")
    )


def test_metrics_parse_and_hold_requests_by_route_queue_jobs_and_pool_sizes(api):
    X = np.random.default_rng(0).normal(size=(30, 3))
    pool = api.create_pool(
        items=items_of(X),
        labels=[{"id": "i0", "label": "a"}, {"id": "i1", "label": "b"}, {"id": "i2", "label": "a", "split": "eval"}],
    )
    api.wait_idle(pool)
    for _ in range(3):
        api.query(pool, k=2)
    families = _scrape(api.get("/metrics"))
    assert FAMILIES <= set(families), FAMILIES - set(families)
    route = "/v1/pools/<string:pool_id>/query"
    assert _value(families["sieve_http_requests"], route=route, method="GET", status="200") >= 3
    assert not any(pool in s.labels.get("route", "") for s in families["sieve_http_requests"].samples)
    counts = [
        s
        for s in families["sieve_http_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["route"] == route
    ]
    assert counts and counts[0].value >= 3
    assert _value(families["sieve_pool_items"], pool_id=pool) == 30
    assert _value(families["sieve_pool_labeled"], pool_id=pool) == 2
    assert _value(families["sieve_pool_eval"], pool_id=pool) == 1
    assert _value(families["sieve_pools"]) >= 1
    assert _value(families["sieve_refresh_jobs"], outcome="ok") >= 1
    assert _value(families["sieve_queue_depth"], queue="sieve") >= 0
    durations = {
        s.labels.get("le"): s.value
        for s in families["sieve_refresh_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert durations["+Inf"] >= 1


def test_a_metrics_token_opens_metrics_and_nothing_else_does(settings, redis):
    from sieve.service.app import create_app

    client = create_app(settings.with_overrides(metrics_token="scraper-token-0123")).test_client()
    _refused(client.get("/metrics"))
    _refused(client.get("/metrics", headers={"Authorization": "Bearer wrong"}))
    assert client.get("/metrics", headers={"Authorization": "Bearer scraper-token-0123"}).status_code == 200


def test_once_api_keys_exist_metrics_needs_its_own_token(settings, redis):
    from sieve.service.app import create_app

    _, token = ApiKeys(redis).create("acme", "")
    client = create_app(settings).test_client()
    refused = _refused(client.get("/metrics", headers={"Authorization": f"Bearer {token}"}))
    assert "SIEVE_METRICS_TOKEN" in refused["detail"]


def _invented(n: int) -> str:
    """The n-th made-up method name: a valid HTTP token no server knows."""
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters += chr(ord("A") + digit)
        if not n:
            return "ZZ" + letters


def test_invented_methods_are_counted_as_other_so_metrics_stay_small(api):
    # The service is shared with the other tests, so what counts is how much these requests add: on a
    # server that labels series with any method, 3,000 of them add megabytes.
    before = len(api.get("/metrics").content)
    for n in range(3000):
        answer = api.request(_invented(n), "/healthz")
        assert answer.status_code == 405, answer.text
    answer = api.get("/metrics")
    assert len(answer.content) - before < 20_000
    families = _scrape(answer)
    methods = {
        s.labels["method"]
        for name in ("sieve_http_requests", "sieve_http_request_duration_seconds")
        for s in families[name].samples
    }
    assert methods <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"}, methods
    assert _value(families["sieve_http_requests"], method="other", status="405") >= 3000
