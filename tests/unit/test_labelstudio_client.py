"""The Label Studio client's own guards, against a real local HTTP server."""
from __future__ import annotations

import pytest

from sieve.labelstudio import client as client_module
from sieve.labelstudio.client import LabelStudioClient, LabelStudioError
from sieve.labelstudio.origins import OriginError
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
