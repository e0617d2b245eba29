"""Only sieve/storage/keys.py spells Sieve's Redis keys: every other module, test and benchmark asks it for
their names, so a key's name is stored data that one file changes, never a string that drifts apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sieve.storage import keys

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("sieve", "service", "workers", "tests", "bench")
KEYS_MODULE = ROOT / "sieve" / "storage" / "keys.py"
PREFIX = keys.POOL_INDEX.split(":")[0] + ":"
"""What every key of Sieve's starts with, taken from keys.py so that this file spells none."""


def _key_literals(path: Path) -> list[tuple[int, str]]:
    """The string constants that start like a key, with their lines; an f-string's parts are constants too,
    so `f"sieve:{{{pool}}}:meta"` counts, and a docstring that merely mentions a key does not."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PREFIX)
    ]


def test_the_search_finds_the_names_keys_py_spells():
    found = {value for _, value in _key_literals(KEYS_MODULE)}
    assert keys.POOL_INDEX in found and keys.API_KEYS in found and PREFIX + "{" in found


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_module_but_keys_py_spells_a_key(folder):
    spelled = {
        f"{path.relative_to(ROOT)}:{line}": value
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != KEYS_MODULE and ".venv" not in path.parts
        for line, value in _key_literals(path)
    }
    assert not spelled, "name these keys with sieve.storage.keys (PoolKeys, TenantKeys, the constants)"


def test_no_lua_script_spells_a_key():
    # Scripts get every key they touch in KEYS, so that Redis (and a cluster) knows them.
    spelled = [path.name for path in (ROOT / "sieve" / "storage" / "lua").glob("*.lua") if PREFIX in path.read_text()]
    assert not spelled
