"""The container files agree with the code: what can be checked without a Docker engine."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_redis_with_aof_and_noeviction_an_api_and_two_workers():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    redis_command = compose["redis"]["command"]
    assert compose["redis"]["image"].startswith("redis:")
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "noeviction"
    assert compose["worker"]["command"] == ["sieve", "worker"]
    assert compose["worker"]["deploy"]["replicas"] == 2
    for service in ("api", "worker"):
        assert compose[service]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert "SIEVE_SECRET_KEY" in compose[service]["environment"]


def test_dockerfile_runs_the_api_as_a_non_root_user_from_a_slim_image():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert lines[0].startswith("FROM python:") and lines[0].endswith("-slim")
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert lines[-1] == 'CMD ["sieve", "api", "--host", "0.0.0.0", "--port", "8000"]'
