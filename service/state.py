"""What the API process holds for every request: built once by create_app, read through `state()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

from sieve.labelstudio.backend import LabelStudio
from sieve.settings import Settings
from sieve.storage.api_keys import ApiKeys
from sieve.use_cases import Pools

_EXTENSION = "sieve"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    pools: Pools
    labelstudio: LabelStudio
    api_keys: ApiKeys
    keys_required: Callable[[], bool]
    """Whether API keys are in use, as this process last looked (see auth.KeysSwitch)."""
    metrics: Callable[[], bytes]
    """The Prometheus exposition of this process and of what Redis holds."""
    openapi_yaml: Callable[[], str]


def attach(app: Flask, app_state: AppState) -> None:
    app.extensions[_EXTENSION] = app_state


def state_of(app: Flask) -> AppState:
    return app.extensions[_EXTENSION]


def state() -> AppState:
    """The state of the app serving the current request."""
    return current_app.extensions[_EXTENSION]
