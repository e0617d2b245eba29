"""Clients that are slow on purpose, over real HTTP: they must not keep anyone else waiting."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from tests.helpers import ApiClient, items_of
from tests.stack import running_service


def test_clients_that_never_finish_their_request_head_do_not_keep_healthz_waiting(live_url):
    address = urlsplit(live_url)
    stalled = []
    try:
        for _ in range(150):
            connection = socket.create_connection((address.hostname, address.port), timeout=10)
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: sieve\r\n")  # and never the blank line
            stalled.append(connection)
        answer = requests.get(f"{live_url}/healthz", timeout=2)
        assert answer.status_code == 200, answer.text
    finally:
        for connection in stalled:
            connection.close()


MAX_WAITING = 8


@pytest.fixture(scope="module")
def unserved_url(service_env, tmp_path_factory):
    """An API on the suite's Redis whose refresh jobs go to a queue no worker serves: its pools never rank."""
    env = {**service_env, "SIEVE_QUEUE": "sieve-unserved", "SIEVE_MAX_WAITING_QUERIES": str(MAX_WAITING)}
    with running_service(env, tmp_path_factory.mktemp("unserved-api"), workers=0) as url:
        yield url


def test_forty_long_polls_on_a_pool_that_never_ranks_leave_the_api_free_for_others(api, unserved_url):
    X = np.random.default_rng(0).normal(size=(30, 3))
    ranked = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "a"}, {"id": "i1", "label": "b"}])
    api.wait_idle(ranked)
    unserved = ApiClient(unserved_url)
    never = unserved.create_pool(items=items_of(X))
    answers: list[tuple[int, float]] = []

    def long_poll():
        started = time.monotonic()
        try:
            status = requests.get(
                f"{unserved_url}/v1/pools/{never}/query", params={"k": 1, "wait": 30}, timeout=40
            ).status_code
        except requests.RequestException:
            status = 0  # the API stopped at the end of the module
        answers.append((status, time.monotonic() - started))

    for _ in range(40):
        threading.Thread(target=long_poll, daemon=True).start()
    time.sleep(1)  # every poll has arrived
    assert requests.get(f"{unserved_url}/healthz", timeout=2).status_code == 200
    other = requests.get(f"{unserved_url}/v1/pools/{ranked}/query", params={"k": 2}, timeout=2)
    assert other.status_code == 200 and len(other.json()["items"]) == 2, other.text
    # Past the tenant's waiting slots, a query does not wait: it says at once that the ranking is pending.
    deadline = time.monotonic() + 10
    while len(answers) < 40 - MAX_WAITING and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [status for status, _ in answers[: 40 - MAX_WAITING]] == [202] * (40 - MAX_WAITING)
