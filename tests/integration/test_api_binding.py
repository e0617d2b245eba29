"""`sieve api` keeps an API without keys (auth off) off every address but loopback unless told otherwise."""

from __future__ import annotations

import subprocess
import sys

from sieve.embedded import free_port
from sieve.storage.api_keys import ApiKeys
from tests.stack import _answers, wait_until


def _api(env, *args) -> list[str]:
    return [sys.executable, "-m", "sieve.cli", "api", "--port", str(free_port()), "--processes", "1", *args]


def test_api_refuses_a_public_address_while_no_api_key_exists(service_env, redis):
    assert not ApiKeys(redis).required()
    result = subprocess.run(
        _api(service_env, "--host", "0.0.0.0"), env=service_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "no API keys exist" in result.stderr and "--allow-anonymous" in result.stderr, result.stderr


def _serves(env, command, log_path) -> None:
    port = command[command.index("--port") + 1]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}"), 30, "the API to answer")
    finally:
        process.terminate()
        process.wait(15)


def test_api_serves_a_public_address_without_keys_when_told_to(service_env, redis, tmp_path):
    _serves(service_env, _api(service_env, "--host", "0.0.0.0", "--allow-anonymous"), tmp_path / "api.log")


def test_api_serves_a_public_address_once_an_api_key_exists(service_env, redis, tmp_path):
    ApiKeys(redis).create("acme", "")
    _serves(service_env, _api(service_env, "--host", "0.0.0.0"), tmp_path / "api.log")
