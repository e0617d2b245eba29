"""`sieve load`'s options, refused before any call: a pool must be named one way, and options go with --name."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sieve.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the pool: --pool ID, or --name NAME"),
        (["--pool", "p", "--name", "n"], "give the pool: --pool ID, or --name NAME"),
        (["--pool", "p", "--strategy", "margin"], "they go with --name"),
        (["--name", "n", "--model", "{not json"], "Invalid value for --model: not JSON"),
        (["--name", "n", "--batch-items", "100001"], "100001 is not in the range 1<=x<=100000"),
    ],
)
def test_bad_options_are_a_usage_error_before_any_call(tmp_path, args, message):
    (tmp_path / "items.csv").write_text("id,a\nx,1\n")
    # Nothing listens on port 9: any call would fail otherwise than with the message.
    result = CliRunner().invoke(main, ["load", "--url", "http://127.0.0.1:9", *args, str(tmp_path / "items.csv")])
    assert result.exit_code == 2 and message in result.output, result.output
