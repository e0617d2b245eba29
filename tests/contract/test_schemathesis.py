"""Property-based contract test: schemathesis drives every operation of the committed openapi.yaml.

The live service (gunicorn, two RQ workers, a real Redis: the `live_url` fixture) answers requests generated
from the document, valid and invalid ones. Every answer must be: no 5xx; a status code the operation lists
itself (not only through `default`); a documented content type, documented headers and a body matching the
documented schema; and a 4xx for input the document says is invalid.

Two thirds of the generated pool ids are swapped for a real pool, half of the job ids for a real refresh
job: a trained pool (40 items of dimension 4, labels of two classes, a model) or a cold one (the same items,
no labels, no model). The teach/predict/release/add-items bodies then name that pool's items, classes and
dimension, so that the success paths run, not only 404s and 422s.

A second, short pass sends every operation a bad API key: the 401s must be documented answers too.

Bounded: SIEVE_SCHEMATHESIS_EXAMPLES examples per operation (default 40) plus schemathesis' coverage cases,
no body above MAX_BODY_BYTES (the document allows 100k items of 10k values per call), no deadline.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sieve.client import Client
from sieve.storage import job_ids
from tests.stack import wait_until

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
MAX_EXAMPLES = int(os.environ.get("SIEVE_SCHEMATHESIS_EXAMPLES", "40"))
MAX_BODY_BYTES = 16 * 1024
"""Generated bodies above this are dropped, in every phase."""

DIM = 4
CLASSES = ("neg", "pos")
ITEM_IDS = [f"i{i}" for i in range(40)]

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES)

REAL: dict = {}
"""The real pools and job of the running test, set by the `real_pools` fixture."""


def _crc(value) -> int:
    return zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))


def _body_size(body) -> int:
    if body is NOT_SET:
        return 0
    try:
        return len(json.dumps(body, default=str).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError, RecursionError):
        return 0


MAX_QUERY_CHARS = 2000
"""Generated query strings above this are dropped: gunicorn itself answers 414 to request lines over 4 KiB,
before the application sees them."""


@schema.hook
def filter_case(context, case) -> bool:
    """Small requests only; a case-level hook, as the coverage phase's cases never meet body-level ones."""
    query = case.query if isinstance(case.query, dict) else {}
    return _body_size(case.body) <= MAX_BODY_BYTES and len(repr(query)) <= MAX_QUERY_CHARS


def before_call(context, case, kwargs) -> None:
    """Aims requests at the real pools or job, with bodies that fit those pools.

    Chosen by a checksum of the generated values, so a case always makes the same choice and shrinks well.
    schemathesis revalidates what is changed here: a negative case made valid is judged as a positive one.
    before_call can only be a global hook: the `aimed_at_real_pools` fixture registers it for this module.
    """
    if not REAL or case.operation.schema.location != schema.location:
        return
    path = case.path_parameters
    if "job_id" in path and _crc(path["job_id"]) % 2 == 0:
        path["job_id"] = REAL["job_id"]
    choice = _crc((path.get("pool_id"), None if case.body is NOT_SET else case.body)) % 3
    if "pool_id" not in path or choice == 2:
        return
    path["pool_id"] = REAL["pools"][choice]
    body, route = case.body, case.operation.path
    if not isinstance(body, dict):
        return
    if route.endswith("/teach") and isinstance(body.get("labels"), list):
        for i, entry in enumerate(body["labels"][: len(ITEM_IDS)]):
            if isinstance(entry, dict):
                entry["id"] = ITEM_IDS[i]
                entry["label"] = CLASSES[_crc(entry.get("label")) % 2]
    elif route.endswith("/predict"):
        # openapi.yaml cannot say "exactly one of features or ids"; the service insists: keep one.
        if isinstance(body.get("ids"), list):
            body.pop("features", None)
            body["ids"] = _real_ids(len(body["ids"]))
        elif isinstance(body.get("features"), list):
            body["features"] = [_fit_row(row) for row in body["features"]]
    elif route.endswith("/release") and isinstance(body.get("ids"), list):
        body["ids"] = _real_ids(len(body["ids"]))
    elif route.endswith("/items") and isinstance(body.get("items"), list):
        for entry in body["items"]:
            if isinstance(entry, dict) and isinstance(entry.get("features"), list):
                entry["features"] = _fit_row(entry["features"])


def _real_ids(n: int) -> list[str]:
    return ITEM_IDS[: max(1, min(n, len(ITEM_IDS)))]


def _fit_row(row):
    """A row cut or padded to the pool's dimension; anything but a list of numbers is left to be refused."""
    if not isinstance(row, list) or not all(type(v) in (int, float) for v in row):
        return row
    return (row + [0.5] * DIM)[:DIM]


def status_code_listed(ctx, response, case):
    """The status code is one the operation lists itself. schemathesis' status_code_conformance accepts any
    code when `default` is listed, and flask-smorest lists `default` on every operation. Probes with a
    method the path does not have (TRACE, PUT...) are left out: their 405 is right and documented nowhere."""
    if case.method.upper() != case.operation.method.upper():
        return None
    listed = {str(code) for code in case.operation.responses.status_codes} - {"default"}
    status = str(response.status_code)
    if status not in listed and f"{status[0]}XX" not in listed:
        raise AssertionError(
            f"{case.method} {case.operation.path} answered {status}, which it does not list "
            f"(it lists {', '.join(sorted(listed))})"
        )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    status_code_listed,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module", autouse=True)
def aimed_at_real_pools():
    schemathesis.hook(before_call)
    yield
    GLOBAL_HOOK_DISPATCHER.unregister(before_call)


@pytest.fixture
def api(live_url, redis):
    """A session on the live service; `redis` deletes the pools after each test."""
    with requests.Session() as session:
        yield session


def _create_pool(api, live_url, labels: list[dict]) -> dict:
    items = [
        {"id": item_id, "features": [float(i % 7), float(i % 2) * 3.0, i / 40.0, -1.0]}
        for i, item_id in enumerate(ITEM_IDS)
    ]
    client = Client(live_url, timeout=30, retries=0, session=api)
    return client.create_pool(items, labels, name="schemathesis", classes=list(CLASSES), random_state=0)


@pytest.fixture
def real_pools(api, live_url):
    """Fresh pools per operation (DELETE, teach and add-items change them), their rankings built: one
    trained on 4 labels of 2 classes, one cold (no labels, no model)."""
    trained = _create_pool(
        api, live_url, [{"id": item_id, "label": CLASSES[i % 2]} for i, item_id in enumerate(ITEM_IDS[:4])]
    )
    cold = _create_pool(api, live_url, [])
    pools = [trained["pool_id"], cold["pool_id"]]

    def settled():
        statuses = [Client(live_url, timeout=30, retries=0, session=api).status(pool_id) for pool_id in pools]
        return statuses[0]["model_version"] and all(s["ranked_version"] == s["version"] for s in statuses)

    wait_until(settled, 60, "the real pools' first rankings")
    REAL.update(pools=pools, job_id=trained["retrain"]["queued_job_id"] or job_ids.refresh(pools[0], 1))
    yield pools
    REAL.clear()


# Function-scoped fixtures serve every example of an operation, on purpose.
SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
]


@schema.parametrize()
@hypothesis_settings(deadline=None, max_examples=MAX_EXAMPLES, suppress_health_check=SUPPRESSED)
def test_every_answer_conforms_to_openapi_yaml(case, api, live_url, request):
    if "{" in case.operation.path:
        request.getfixturevalue("real_pools")  # built once per operation, on its first example
    case.call_and_validate(base_url=live_url, session=api, checks=CHECKS, timeout=60)


BAD_KEY = {"Authorization": "Bearer sk_000000000000_not-a-key-of-this-sieve"}


@schema.parametrize()
@hypothesis_settings(
    deadline=None,
    max_examples=3,
    phases=[Phase.generate],  # no coverage cases here
    suppress_health_check=SUPPRESSED,
)
def test_a_bad_api_key_gets_a_documented_answer(case, api, live_url):
    """An invalid bearer key is refused on every /v1 route (401), whether or not keys are required yet;
    the answer must be documented like any other. The open routes just answer."""
    case.call_and_validate(base_url=live_url, session=api, headers=BAD_KEY, checks=CHECKS, timeout=60)
