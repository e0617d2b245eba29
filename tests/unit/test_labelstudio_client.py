"""The Label Studio client's own guards, against a real local HTTP server."""

from __future__ import annotations

import pytest

from sieve.labelstudio import client as client_module
from sieve.labelstudio.client import LabelStudioClient, LabelStudioError
from sieve.origins import OriginError
from tests.labelstudio_support import FakeLabelStudio


def test_a_connection_that_reaches_a_forbidden_address_is_dropped_before_any_request(monkeypatch):
    """As when the host resolved elsewhere at connect time than when it was checked (DNS rebinding)."""
    with FakeLabelStudio(allowed=False) as fake:

        def forbidden(address):
            raise OriginError(f"leads to {address}, a link-local address")

        monkeypatch.setattr(client_module, "refuse_address", forbidden)
        with pytest.raises(LabelStudioError, match="ConnectionError"):
            LabelStudioClient(fake.url, "tok").set_model_version(1, "v")
        assert fake.requests == []


def test_an_origin_outside_the_allow_list_is_not_called():
    with FakeLabelStudio(allowed=False) as fake:
        with pytest.raises(LabelStudioError, match="SIEVE_LABELSTUDIO_ORIGINS"):
            LabelStudioClient(fake.url, "tok", allowed_origins=("http://127.0.0.1:1",)).set_model_version(1, "v")
        assert fake.requests == []


def _tasks(n: int) -> list[dict]:
    return [{"id": i, "data": {"text": f"t{i}"}, "annotations": []} for i in range(1, n + 1)]


def test_pages_shorter_than_asked_are_read_to_the_reported_total():
    """A Label Studio that caps page_size answers short pages: they do not end the listing early, which
    a sync would take for the whole project and unlabel the rest."""
    with FakeLabelStudio() as fake:
        fake.tasks, fake.page_size_max = _tasks(1200), 100
        client = LabelStudioClient(fake.url, "tok")
        read = [task["id"] for page in client.tasks(1) for task in page]
        assert read == list(range(1, 1201)) and client.stopped is None


def test_a_listing_that_ends_before_the_reported_total_is_said_to_be_partial():
    with FakeLabelStudio() as fake:
        fake.tasks, fake.reported_total = _tasks(30), 35  # five deleted while the pages were read
        client = LabelStudioClient(fake.url, "tok")
        assert sum(len(page) for page in client.tasks(1)) == 30
        assert client.stopped and "30 tasks of the 35" in client.stopped


def test_a_proxy_from_the_environment_is_not_used(monkeypatch):
    """Through a proxy the connected peer would be the proxy, and where Label Studio's name leads unchecked."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with FakeLabelStudio() as fake:
        LabelStudioClient(fake.url, "tok").set_model_version(1, "v")
        assert [r["method"] for r in fake.requests] == ["PATCH"]
