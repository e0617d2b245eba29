"""Prints constraints.txt: the installed version of every distribution the project's dependencies need.

Run it in the environment whose test run passed (`pip install -e '.[test,bench]'`, then the tests):
    python .ci/constraints.py > constraints.txt
It walks the requirements of pyproject.toml (every extra included) through the installed metadata, so
what the environment holds beyond that closure (tools, other projects) stays out.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Build tools, left out as `pip freeze` does: pinning them would also pin what builds the project itself.
TOOLS = {"pip", "setuptools", "wheel"}
HEADER = """\
# The versions the test suite passed with: CI and the Dockerfile install with `-c constraints.txt`.
# Refresh: in a fresh venv, `pip install -e '.[test,bench]'` (no -c), run the tests, then
#     python .ci/constraints.py > constraints.txt
# It lists the dependency closure of pyproject.toml (every extra) as installed, pip/setuptools/wheel aside.
"""


def closure(requirements: list[Requirement]) -> dict[str, str]:
    pinned: dict[str, str] = {}
    todo = [(requirement, frozenset()) for requirement in requirements]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        requirement, parent_extras = todo.pop()
        environment = {"extra": ""}
        if requirement.marker and not any(
            requirement.marker.evaluate({**environment, "extra": extra}) for extra in parent_extras or {""}
        ):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen or name in TOOLS:
            continue
        seen.add((name, extras))
        distribution = metadata.distribution(name)
        pinned[name] = distribution.version
        for child in distribution.requires or []:
            todo.append((Requirement(child), extras))
    return pinned


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += [Requirement(line) for line in extra]
    pinned = closure(requirements)
    sys.stdout.write(HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pinned.items())))


if __name__ == "__main__":
    main()
