"""The layers of the code, read from its import statements (every one, lazy imports included).

sieve.service (the HTTP process) and sieve.workers (the RQ process) sit on top of the shared code and never
import each other; the shared code imports neither; the core knows no framework and no storage; storage knows
no use case; and no two parts of the code import each other, directly or around a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"sieve": ROOT / "sieve", "sieve.service": ROOT / "service", "sieve.workers": ROOT / "workers"}
ENTRY_POINTS = {"sieve.cli"}
"""The command line starts either process, so it alone may import both."""


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[0] in ("service", "workers") and package == "sieve":
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            modules[name] = path
    return modules


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    """The unit the layers speak of: a subpackage (sieve.core) or a top-level module (sieve.settings)."""
    return ".".join(module.split(".")[:2])


def _sieve_imports(module: str) -> set[str]:
    return {name for name in IMPORTS[module] if name in MODULES}


def _third_party(module: str) -> set[str]:
    return {name.split(".")[0] for name in IMPORTS[module] if not name.startswith("sieve")}


def test_the_source_folders_are_found():
    assert "sieve.service.app" in MODULES and "sieve.workers.worker" in MODULES and "sieve.core.strategies" in MODULES


@pytest.mark.parametrize(("process", "other"), [("sieve.service", "sieve.workers"), ("sieve.workers", "sieve.service")])
def test_the_two_processes_never_import_each_other(process, other):
    offenders = {
        (module, name)
        for module in MODULES
        if _part(module) == process
        for name in _sieve_imports(module)
        if _part(name) == other
    }
    assert not offenders


def test_shared_code_imports_neither_process():
    offenders = {
        (module, name)
        for module in MODULES
        if _part(module) not in ("sieve.service", "sieve.workers") and module not in ENTRY_POINTS
        for name in _sieve_imports(module)
        if _part(name) in ("sieve.service", "sieve.workers")
    }
    assert not offenders


def test_the_core_imports_only_itself_and_the_limits_and_no_framework():
    frameworks = {"flask", "flask_smorest", "marshmallow", "redis", "rq", "requests", "gevent", "gunicorn"}
    for module in MODULES:
        if _part(module) != "sieve.core":
            continue
        assert {_part(name) for name in _sieve_imports(module)} <= {"sieve.core", "sieve.limits"}, module
        assert not _third_party(module) & frameworks, module


def test_storage_knows_no_web_framework_and_no_use_case():
    for module in MODULES:
        if _part(module) != "sieve.storage":
            continue
        assert not _third_party(module) & {"flask", "flask_smorest", "marshmallow"}, module
        allowed = {"sieve.storage", "sieve.core", "sieve.limits", "sieve.settings"}
        assert {_part(name) for name in _sieve_imports(module)} <= allowed, module


def test_no_part_of_the_code_imports_itself_around_a_loop():
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        graph.setdefault(_part(module), set()).update(
            _part(name) for name in _sieve_imports(module) if _part(name) != _part(module)
        )
    graph.pop("sieve", None)  # the package's own __init__ imports nothing and is imported by everything

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    loops = [loop for part in sorted(graph) if (loop := cycle_from(part))]
    assert not loops, " -> ".join(loops[0])


def test_only_the_apps_wiring_talks_to_redis_in_the_http_process():
    """Views, auth and metrics reach storage through the use cases and storage classes; only app.py, which
    builds them, holds a Redis client (and turns Redis's errors into 503s)."""
    talking = {
        module
        for module in MODULES
        if _part(module) == "sieve.service" and module != "sieve.service.app" and "redis" in _third_party(module)
    }
    assert not talking
