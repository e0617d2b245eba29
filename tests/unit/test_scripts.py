"""The Lua scripts: one name each, the field of `Scripts` that runs it and the file that holds it."""

from importlib import resources

from sieve.storage.scripts import COMMON, Scripts, source

FOLDER = resources.files("sieve.storage") / "lua"


def test_every_script_file_is_a_script_and_every_script_has_a_file():
    files = {path.name.removesuffix(".lua") for path in FOLDER.iterdir()}
    assert files - {COMMON} == set(Scripts.names())


def test_a_script_gets_the_shared_functions_exactly_when_it_calls_one():
    common = (FOLDER / f"{COMMON}.lua").read_text()
    assert source("teach") == common + "\n" + (FOLDER / "teach.lua").read_text()
    assert source("query").startswith(common)  # it calls end_lease only
    assert source("claim") == (FOLDER / "claim.lua").read_text()
    assert "request_refresh" not in source("heartbeat")
