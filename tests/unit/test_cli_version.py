"""`sieve --version` names the installed distribution's version."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from sieve.cli import main


def test_version_option_prints_the_installed_sieve_al_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"sieve, version {version('sieve-al')}"
