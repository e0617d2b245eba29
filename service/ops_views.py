"""Operational endpoints: liveness, readiness, job state and the OpenAPI document."""

from __future__ import annotations

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST

from sieve.service.parsing import SieveBlueprint
from sieve.service.pool_schemas import HealthSchema, JobSchema, ReadySchema
from sieve.service.problems import problem_response
from sieve.service.responses import problems
from sieve.service.state import state

blp = SieveBlueprint("ops", __name__, description="Health, readiness, jobs and the API description.")


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthSchema)
def healthz():
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=ReadySchema, description="Redis does not answer.")
def readyz():
    """Redis answers; how many workers are alive."""
    workers = state().pools.workers_alive()
    if workers is None:
        return {"status": "unavailable", "redis": False, "workers": 0}, 503
    return {"status": "ok", "redis": True, "workers": workers}


@blp.route("/v1/jobs/<string:job_id>", methods=["GET"])
@blp.response(200, JobSchema)
@problems(blp, 404)
def job(job_id):
    """The state of a refresh job (404 once its pool is deleted)."""
    found = state().pools.job(job_id)
    result = found.return_value() if found.is_finished else None
    return {
        "job_id": found.id,
        "status": found.get_status(refresh=False).value,
        "enqueued_at": _iso(found.enqueued_at),
        "started_at": _iso(found.started_at),
        "ended_at": _iso(found.ended_at),
        "result": result if isinstance(result, dict) else None,
        "error": (
            found.latest_result().exc_string.strip().splitlines()[-1]
            if found.is_failed and found.latest_result()
            else None
        ),
    }


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    security=[{"metricsToken": []}, {}],
    responses={
        "200": {
            "description": "Prometheus text format: requests and latency per route, queue depth, refresh "
            "outcomes and durations, pool sizes.",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {}},
        },
        "401": {"$ref": f"#/components/responses/{problem_response(401)}"},
    },
)
def metrics():
    """Prometheus metrics. Open while auth is off; once API keys exist, only SIEVE_METRICS_TOKEN opens it."""
    return Response(state().metrics(), content_type=CONTENT_TYPE_LATEST)


@blp.route("/openapi.yaml", methods=["GET"])
@blp.doc(responses={"200": {"description": "This document.", "content": {"application/yaml": {}}}})
def openapi_yaml():
    """This API's OpenAPI document."""
    return Response(state().openapi_yaml(), mimetype="application/yaml")
