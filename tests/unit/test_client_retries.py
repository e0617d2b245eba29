"""sieve.client's retries against a local HTTP server that refuses calls the way the API does (429, 503)."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sieve.client import ApiError, Client


class Refusing(BaseHTTPRequestHandler):
    """Answers the first `refusals` calls with the given (status, Retry-After), then 202; records each call."""

    refusals: list[tuple[int, str | None]] = []
    calls: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).calls.append({"at": time.monotonic(), "headers": dict(self.headers), "body": body})
        if type(self).refusals:
            status, retry_after = type(self).refusals.pop(0)
            answer = {"type": "about:blank", "title": "refused", "status": status, "detail": "retry shortly"}
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/problem+json")
        else:
            answer = {"accepted": 1, "labels_version": 1, "job_id": None}
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
        data = json.dumps(answer).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Refusing.refusals, Refusing.calls = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_429_and_a_503_are_retried_after_their_retry_after_with_one_key_and_one_body(server):
    Refusing.refusals = [(429, "0.3"), (503, formatdate(time.time() + 1, usegmt=True))]
    answer = Client(server, api_key="token-1").teach("p", {"i1": "a"})
    assert answer["labels_version"] == 1
    calls = Refusing.calls
    assert len(calls) == 3
    assert len({c["headers"]["Idempotency-Key"] for c in calls}) == 1 and len({c["body"] for c in calls}) == 1
    assert all(c["headers"]["Authorization"] == "Bearer token-1" for c in calls)
    assert calls[1]["at"] - calls[0]["at"] >= 0.25
    assert json.loads(calls[0]["body"]) == {"labels": [{"id": "i1", "label": "a"}]}


def test_retries_end_with_the_last_problem_raised(server):
    Refusing.refusals = [(503, "0")] * 3
    with pytest.raises(ApiError) as refused:
        Client(server, retries=2).teach("p", [("i1", "a")], split="eval")
    assert refused.value.status == 503 and refused.value.detail == "retry shortly"
    assert refused.value.retry_after == 0
    assert len(Refusing.calls) == 3
    assert json.loads(Refusing.calls[0]["body"]) == {"labels": [{"id": "i1", "label": "a", "split": "eval"}]}


def test_a_client_that_never_retries_sends_no_key(server):
    Refusing.refusals = [(503, "0")]
    with pytest.raises(ApiError):
        Client(server, retries=0).teach("p", [("i1", "a")])
    assert len(Refusing.calls) == 1 and "Idempotency-Key" not in Refusing.calls[0]["headers"]
