"""Every start-up error of `sieve up`, `sieve api` and `sieve worker` is one line on stderr naming the setting
and the fix, with a non-zero exit status and no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from sieve.datafolder import DataFolder
from sieve.embedded import free_port

SECRET = "s" * 32
COMMANDS = {
    "up": ["up", "--workers", "1", "--api-processes", "1"],
    "api": ["api", "--processes", "1"],
    "worker": ["worker", "--burst"],
}


def _env(tmp_path, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("SIEVE_")}
    return {**env, "SIEVE_DATA_DIR": str(tmp_path / "data"), **settings}


def _refused(command: list[str], env: dict, cwd, *naming: str) -> str:
    """Runs the command, which must exit at once with one line on stderr that names each of `naming`."""
    port = ["--port", str(free_port())] if command[0] in ("up", "api") and "--port" not in command else []
    result = subprocess.run(
        [sys.executable, "-m", "sieve.cli", *command, *port],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for name in naming:
        assert name in lines[0], lines[0]
    return lines[0]


def _closed_redis_url() -> str:
    return f"redis://:a-password@127.0.0.1:{free_port()}/0"


@pytest.mark.parametrize("command", ["up", "api", "worker"])
def test_an_unreachable_redis_is_one_line_naming_redis_url(command, tmp_path):
    env = _env(tmp_path, REDIS_URL=_closed_redis_url(), SIEVE_SECRET_KEY=SECRET)
    line = _refused(COMMANDS[command], env, tmp_path, "REDIS_URL", "Connection refused", "start that Redis")
    assert "a-password" not in line


@pytest.mark.parametrize("command", ["api", "worker"])
def test_a_redis_url_that_is_no_url_is_one_line_naming_redis_url(command, tmp_path):
    env = _env(tmp_path, REDIS_URL="localhost:6379", SIEVE_SECRET_KEY=SECRET)
    _refused(COMMANDS[command], env, tmp_path, "REDIS_URL is not a Redis URL")


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_without_redis_url_say_to_set_it_or_use_sieve_up(command, tmp_path):
    _refused(COMMANDS[command], _env(tmp_path, SIEVE_SECRET_KEY=SECRET), tmp_path, "REDIS_URL is not set", "sieve up")


@pytest.mark.parametrize("command", ["api", "worker"])
@pytest.mark.parametrize("secret", [None, "short"])
def test_api_and_worker_refuse_to_start_without_a_long_enough_secret_key(command, secret, tmp_path):
    # Checked before Redis: the same line whether or not Redis answers.
    env = _env(tmp_path, REDIS_URL=_closed_redis_url(), **({"SIEVE_SECRET_KEY": secret} if secret else {}))
    _refused(COMMANDS[command], env, tmp_path, "SIEVE_SECRET_KEY", "at least 16 characters", "openssl rand")


def test_sieve_up_refuses_a_short_secret_key_it_is_given(tmp_path):
    _refused(COMMANDS["up"], _env(tmp_path, SIEVE_SECRET_KEY="short"), tmp_path, "SIEVE_SECRET_KEY")
    assert not (tmp_path / "data" / "secret.key").exists()


@pytest.mark.parametrize("command", ["up", "api", "worker"])
@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SIEVE_JOB_TIMEOUT", "soon", "SIEVE_JOB_TIMEOUT must be an integer"),
        ("SIEVE_MAX_BODY_BYTES", "10", "SIEVE_MAX_BODY_BYTES must be at least 1024"),
        ("SIEVE_ACCESS_LOG", "yes", "SIEVE_ACCESS_LOG must be 1 or 0"),
        ("SIEVE_LABELSTUDIO_ORIGINS", "http://ls/api", "SIEVE_LABELSTUDIO_ORIGINS"),
        ("SIEVE_LABELSTUDIO_BASIC_AUTH", "nocolon", "SIEVE_LABELSTUDIO_BASIC_AUTH must be user:password"),
        ("SIEVE_CORS_ORIGINS", "https://app.example.com/labels", "SIEVE_CORS_ORIGINS"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(command, name, value, message, tmp_path):
    env = _env(tmp_path, REDIS_URL=_closed_redis_url(), SIEVE_SECRET_KEY=SECRET, **{name: value})
    _refused(COMMANDS[command], env, tmp_path, message)


def test_sieve_up_on_a_data_folder_in_use_is_one_line_naming_sieve_data_dir(tmp_path):
    folder = DataFolder(tmp_path / "data")
    folder.lock()
    try:
        folder.note_holder("a test holding the lock")
        _refused(COMMANDS["up"], _env(tmp_path), tmp_path, "is in use by a test holding the lock", "SIEVE_DATA_DIR")
    finally:
        folder.unlock()


def test_sieve_up_on_a_data_folder_it_cannot_make_is_one_line_naming_sieve_data_dir(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    env = {**_env(tmp_path), "SIEVE_DATA_DIR": str(tmp_path / "file" / "data")}
    _refused(COMMANDS["up"], env, tmp_path, "cannot use the data folder", "SIEVE_DATA_DIR")


def test_sieve_api_on_a_port_in_use_is_one_line_naming_the_port(service_env, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*COMMANDS["api"], "--port", str(port)]
        _refused(command, service_env, tmp_path, f"port {port} on 127.0.0.1 is in use", "--port")


def test_sieve_api_refuses_any_cors_origin_while_no_api_key_exists(service_env, redis, tmp_path):
    env = {**service_env, "SIEVE_CORS_ORIGINS": "*"}
    _refused(COMMANDS["api"], env, tmp_path, "SIEVE_CORS_ORIGINS", "sieve keys create")
