"""The container files agree with the code: what can be checked without a container engine.

tests/containers/run.py builds and runs them for real (see docs/containers.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from sieve.limits import MAX_QUERY_WAIT_SECONDS
from sieve.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_compose_runs_redis_with_aof_noeviction_and_a_memory_bound():
    redis = compose()["redis"]
    command = redis["command"]
    assert redis["image"].startswith("redis:")
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert re.fullmatch(r"\$\{REDIS_MAXMEMORY:-\d+[kmg]b\}", command[command.index("--maxmemory") + 1])
    assert "/data" in redis["volumes"][0]


def test_compose_builds_one_image_that_the_api_and_the_workers_run():
    services = compose()
    assert services["api"]["image"] == services["worker"]["image"] == "${SIEVE_IMAGE:-sieve:latest}"
    assert [name for name, service in services.items() if "build" in service] == ["api"]
    assert services["worker"]["command"] == ["sieve", "worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["api"]["deploy"]["replicas"] >= 2
    for name in ("api", "worker"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["env_file"] == "${SIEVE_ENV_FILE:-sieve.env}"


def test_every_service_restarts_and_has_a_healthcheck_that_needs_no_curl():
    for name, service in compose().items():
        assert service["restart"] == "unless-stopped", name
        test = service["healthcheck"]["test"]
        assert "curl" not in str(test), name
    services = compose()
    assert "/readyz" in services["api"]["healthcheck"]["test"]
    assert services["worker"]["healthcheck"]["test"] == "python -m sieve.workers.healthcheck"
    assert (ROOT / "workers" / "healthcheck.py").exists()


def test_only_the_proxy_is_published_and_on_loopback_by_default():
    services = compose()
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    (published,) = services["proxy"]["ports"]
    assert published == "${SIEVE_PUBLISH_ADDRESS:-127.0.0.1}:${SIEVE_PUBLISH_PORT:-8000}:8000"
    assert services["proxy"]["image"].startswith("nginx:")
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]
    # Without keys the API refuses 0.0.0.0 unless told; the proxy reaches it on the compose network only.
    assert "--allow-anonymous" in services["api"]["command"]


def test_the_proxy_balances_the_api_replicas_and_outlasts_a_waiting_query():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"upstream sieve_api \{[^}]*server api:8000", conf)
    assert "proxy_pass http://sieve_api;" in conf
    assert "proxy_buffering on;" in conf and "proxy_request_buffering on;" in conf
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read_timeout > MAX_QUERY_WAIT_SECONDS
    body_mb = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert body_mb * 1024 * 1024 >= Settings.max_content_length
    # Shorter than gunicorn's keep-alive (30 s): nginx never reuses a connection the API is closing.
    assert int(re.search(r"keepalive_timeout (\d+)s;", conf).group(1)) < 30


def test_the_env_example_names_every_setting_and_nothing_else():
    source = (ROOT / "sieve" / "settings.py").read_text()
    settings = set(re.findall(r"\"((?:SIEVE|REDIS)_[A-Z_]+)\"", source))
    example = (ROOT / "sieve.env.example").read_text()
    named = set(re.findall(r"^#? ?((?:SIEVE|REDIS)_[A-Z_]+)=", example, re.MULTILINE))
    # REDIS_URL is the compose file's to set: it names the redis service.
    assert named == settings - {"REDIS_URL"}
    assert "SIEVE_DATA_DIR" in settings


def test_dockerfile_installs_the_tested_versions_as_a_non_root_user_from_a_slim_image():
    text = (ROOT / "Dockerfile").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("FROM python:") and lines[0].endswith("-slim AS dependencies")
    assert "FROM dependencies" in lines
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert lines[-1] == 'CMD ["sieve", "api", "--host", "0.0.0.0", "--port", "8000"]'
    for folder in ("sieve", "service", "workers"):
        assert f"COPY {folder} ./{folder}" in lines
    assert "pip install -c constraints.txt" in text
    # Not the sources' folder: `python -m sieve.workers.healthcheck` must import the installed package.
    assert [line for line in lines if line.startswith("WORKDIR ")][-1] == "WORKDIR /home/sieve"


def test_dockerignore_keeps_the_context_to_what_the_image_needs():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for name in (".git", ".venv", "tests", "sieve.env"):
        assert name in ignored
    for needed in ("sieve", "service", "workers", "constraints.txt", "wheelhouse"):
        assert needed not in ignored


def test_constraints_pin_every_dependency_of_the_project():
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line
            pinned[canonicalize_name(name)] = version
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    missing = sorted({canonicalize_name(Requirement(line).name) for line in wanted} - set(pinned))
    assert not missing, f"constraints.txt lacks {missing}: regenerate it (see its first lines)"
    for line in wanted:
        requirement = Requirement(line)
        assert requirement.specifier.contains(pinned[canonicalize_name(requirement.name)], prereleases=True), line
