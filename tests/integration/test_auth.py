"""API keys and tenants: every endpoint but health needs a key once keys exist; no tenant sees another's pool."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from redis import Redis

from sieve.cli import main
from sieve.embedded import EmbeddedRedis
from sieve.storage import job_ids
from sieve.storage.keys import API_KEYS, PoolKeys
from tests.conftest import SECRET
from tests.helpers import ApiClient
from tests.labelstudio_support import one
from tests.stack import running_service, sieve_cli


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A Sieve of its own (auth switches on for its whole Redis), with keys for two tenants."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("auth-redis")).start()
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "SIEVE_SECRET_KEY": SECRET,
        "SIEVE_LABELSTUDIO_ORIGINS": "http://localhost:8080",
    }  # the hostname of the captured setup
    try:
        with running_service(env, tmp_path_factory.mktemp("auth-logs"), workers=1) as url:
            anonymous = ApiClient(url)
            open_pool = anonymous.create_pool(name="made while auth was off")
            tokens = {}
            for tenant in ("acme", "globex"):
                made = sieve_cli(env, "keys", "create", "--tenant", tenant)
                tokens[tenant] = made.stdout.strip().rsplit(" ", 1)[-1]
            yield {
                "url": url,
                "redis": Redis.from_url(server.url),
                "tokens": tokens,
                "open_pool": open_pool,
                "env": env,
            }
    finally:
        server.stop()


def client(keyed, tenant: str | None) -> ApiClient:
    api = ApiClient(keyed["url"])
    if tenant:
        api.session.headers["Authorization"] = f"Bearer {keyed['tokens'][tenant]}"
    return api


def wait_for_auth(api: ApiClient) -> None:
    # Each API process re-reads whether keys are required at most once a second.
    for _ in range(100):
        if api.get("/v1/pools").status_code == 401:
            return
        time.sleep(0.05)


def test_redis_keeps_only_digests_of_the_keys(keyed):
    stored = b"".join(keyed["redis"].hgetall(API_KEYS).values())
    for token in keyed["tokens"].values():
        secret = token.split("_", 2)[2]  # the secret itself may contain "_"
        assert token.encode() not in stored and secret.encode() not in stored


def test_without_a_key_every_endpoint_but_health_is_a_401(keyed):
    api = client(keyed, None)
    wait_for_auth(api)
    for method, path in [
        ("GET", "/v1/pools"),
        ("POST", "/v1/pools"),
        ("GET", f"/v1/pools/{keyed['open_pool']}"),
        ("GET", f"/v1/pools/{keyed['open_pool']}/query"),
        ("GET", f"/v1/jobs/{job_ids.refresh('00', 1)}"),
    ]:
        answer = api.request(method, path, json={} if method == "POST" else None)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/healthz", "/readyz", "/openapi.yaml"):
        assert api.get(path).status_code == 200


@pytest.mark.parametrize("header", ["Bearer sk_000000000000_" + "x" * 43, "Bearer nonsense", "Basic dXNlcjpwdw=="])
def test_a_wrong_key_is_a_401(keyed, header):
    answer = ApiClient(keyed["url"]).get("/v1/pools", headers={"Authorization": header})
    assert answer.status_code == 401 and answer.json()["field"] == "Authorization"


def test_another_tenants_pool_is_a_404_on_every_endpoint_and_absent_from_the_list(keyed):
    acme, globex = client(keyed, "acme"), client(keyed, "globex")
    pool = acme.create_pool(
        items=[{"id": "a", "features": [0.0]}, {"id": "b", "features": [1.0]}],
        labels=[{"id": "a", "label": "x"}, {"id": "b", "label": "y"}],
    )
    taught = acme.teach(pool, [("a", "x")])
    for method, path, body in [
        ("GET", "", None),
        ("DELETE", "", None),
        ("GET", "/query", None),
        ("POST", "/teach", {"labels": [{"id": "a", "label": "y"}]}),
        ("POST", "/items", {"items": [{"id": "c", "features": [2.0]}]}),
        ("POST", "/items/lookup", {"ids": ["a"]}),
        ("POST", "/predict", {"ids": ["a"]}),
        ("POST", "/release", {"ids": ["a"]}),
        ("PATCH", "", {"stopping": {"budget": 1, "enforce_budget": True}}),
    ]:
        answer = globex.request(method, f"/v1/pools/{pool}{path}", json=body)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["field"] == "pool_id"
    assert globex.get(f"/v1/jobs/{taught['job_id']}").status_code == 404
    assert pool not in {p["pool_id"] for p in globex.get("/v1/pools").json()["pools"]}
    assert pool in {p["pool_id"] for p in acme.get("/v1/pools").json()["pools"]}
    status = acme.status(pool)
    assert status["n_items"] == 2 and status["labels_version"] == 2 and status["stopping"]["budget"] is None
    assert keyed["open_pool"] not in {p["pool_id"] for p in acme.get("/v1/pools").json()["pools"]}


def test_a_deleted_pools_jobs_are_a_404_to_every_tenant(keyed):
    acme, globex = client(keyed, "acme"), client(keyed, "globex")
    pool = acme.create_pool(
        items=[{"id": "a", "features": [0.0]}, {"id": "b", "features": [1.0]}],
        labels=[{"id": "a", "label": "x"}, {"id": "b", "label": "y"}],
    )
    acme.wait_idle(pool)
    job = acme.teach(pool, [("a", "x")])["job_id"]
    assert job and acme.get(f"/v1/jobs/{job}").status_code == 200
    assert acme.delete(f"/v1/pools/{pool}").status_code == 204
    for tenant in (acme, globex):
        answer = tenant.get(f"/v1/jobs/{job}")
        assert answer.status_code == 404 and answer.json()["field"] == "job_id"
        assert answer.headers["Content-Type"] == "application/problem+json"


def test_the_same_idempotency_key_in_two_tenants_makes_two_pools(keyed):
    made = {
        tenant: client(keyed, tenant).post("/v1/pools", json={"name": "n"}, headers={"Idempotency-Key": "k1"})
        for tenant in ("acme", "globex")
    }
    assert made["acme"].json()["pool_id"] != made["globex"].json()["pool_id"]


def test_a_revoked_key_is_refused_and_auth_stays_on(keyed):
    env = keyed["env"]
    made = sieve_cli(env, "keys", "create", "--tenant", "initech").stdout.split()
    key_id, token = made[1], made[-1]
    api = ApiClient(keyed["url"])
    assert api.get("/v1/pools", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = subprocess.run(
        [sys.executable, "-m", "sieve.cli", "keys", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert key_id in listed and token not in listed
    subprocess.run(
        [sys.executable, "-m", "sieve.cli", "keys", "revoke", key_id], env=env, check=True, capture_output=True
    )
    assert api.get("/v1/pools", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_label_studio_authenticates_with_a_key_as_its_basic_auth_password(keyed):
    api = ApiClient(keyed["url"])
    wait_for_auth(api)
    setup = one("04_repredict_after_version_bump.jsonl", "/setup")["body"]
    refused = api.post("/labelstudio/setup", json=setup)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert api.get("/labelstudio/health").status_code == 200  # Label Studio's connection check
    basic = {
        tenant: {"Authorization": "Basic " + base64.b64encode(f"ls:{token}".encode()).decode()}
        for tenant, token in keyed["tokens"].items()
    }
    assert api.post("/labelstudio/setup", json=setup, headers=basic["acme"]).status_code == 200
    names = {
        tenant: [p["name"] for p in client(keyed, tenant).get("/v1/pools").json()["pools"]]
        for tenant in ("acme", "globex")
    }
    assert "Label Studio project 1" in names["acme"] and "Label Studio project 1" not in names["globex"]
    created = one("05_update_training_delete.jsonl", "/webhook", "ANNOTATION_CREATED")["body"]
    assert api.post("/labelstudio/webhook", json=created, headers=basic["globex"]).json()["status"] == "ignored"
    assert api.post("/labelstudio/webhook", json=created, headers=basic["acme"]).json()["status"] == "ok"
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ls:sk_nope_nope").decode()}
    assert api.post("/labelstudio/webhook", json=created, headers=wrong).status_code == 401


def test_a_key_created_with_adopt_unowned_reaches_the_pools_made_while_auth_was_off(keyed):
    open_pool = keyed["open_pool"]
    globex = client(keyed, "globex")  # its key was created without the flag
    wait_for_auth(globex)
    assert globex.get(f"/v1/pools/{open_pool}").status_code == 404
    made = sieve_cli(keyed["env"], "keys", "create", "--tenant", "initech", "--adopt-unowned")
    key_line, adopted_line = made.stdout.strip().splitlines()
    assert adopted_line == "adopted 1 pools made while auth was off into tenant 'initech'"
    initech = ApiClient(keyed["url"])
    initech.session.headers["Authorization"] = f"Bearer {key_line.rsplit(' ', 1)[-1]}"
    assert open_pool in {p["pool_id"] for p in initech.get("/v1/pools").json()["pools"]}
    answer = initech.get(f"/v1/pools/{open_pool}")
    assert answer.status_code == 200 and answer.json()["name"] == "made while auth was off"
    assert keyed["redis"].hget(PoolKeys(open_pool).meta, "tenant") == b"initech"
    assert globex.get(f"/v1/pools/{open_pool}").status_code == 404
    assert open_pool not in {p["pool_id"] for p in globex.get("/v1/pools").json()["pools"]}
    # Nothing is left unowned, so a second adoption takes nothing.
    again = sieve_cli(keyed["env"], "keys", "create", "--tenant", "umbrella", "--adopt-unowned")
    assert again.stdout.strip().splitlines()[-1] == "adopted 0 pools made while auth was off into tenant 'umbrella'"


def test_sieve_load_acts_for_the_tenant_of_its_key(keyed, tmp_path):
    (tmp_path / "items.csv").write_text("id,a,b\nx,1,2\ny,3,4\n")

    def load(token: str | None):
        env = {"SIEVE_API_KEY": token} if token else {}
        args = ["load", "--url", keyed["url"], "--quiet", "--name", "shared name", str(tmp_path / "items.csv")]
        return CliRunner().invoke(main, args, env=env)

    wait_for_auth(client(keyed, None))
    refused = load(None)
    assert refused.exit_code == 1 and "401" in refused.output and "Traceback" not in refused.output
    made = {tenant: load(keyed["tokens"][tenant]) for tenant in ("acme", "globex")}
    assert all(result.exit_code == 0 for result in made.values()), [r.output for r in made.values()]
    # Each tenant's name lookup sees its own pools only: two pools, one each.
    assert made["acme"].stdout != made["globex"].stdout
    assert "(created)" in made["acme"].stderr and "(created)" in made["globex"].stderr
    again = load(keyed["tokens"]["acme"])
    assert again.stdout == made["acme"].stdout and "0 items sent, 2 skipped" in again.stderr
