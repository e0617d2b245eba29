"""`sieve keys` against a real Redis."""
from __future__ import annotations

from click.testing import CliRunner

from sieve.cli import main


def test_keys_list_without_keys_says_auth_is_off(redis_url, redis):
    result = CliRunner().invoke(main, ["keys", "list"], env={"REDIS_URL": redis_url})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no API keys: auth is off; `sieve keys create --tenant NAME` turns it on"
