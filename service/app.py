"""The one place that wires the API: settings, Redis, the service, blueprints and error handling."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request
from redis import Redis
from redis.exceptions import RedisError

from sieve.core.errors import SieveError
from sieve.labelstudio.backend import LabelStudio
from sieve.service import auth, cors, labelstudio_views, metrics, ops_views, pool_views, tabular_bodies
from sieve.service.problems import ProblemApi, domain_error, problem
from sieve.service.state import AppState, attach
from sieve.settings import Settings
from sieve.storage.api_keys import ApiKeys
from sieve.storage.connection import connect
from sieve.storage.link_store import LinkStore
from sieve.storage.scrape import ScrapeReads
from sieve.use_cases import Pools

log = logging.getLogger("sieve.service")
access_log = logging.getLogger("sieve.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def request_context() -> dict:
    """What every log record of a request carries: its request id."""
    return {"request_id": g.get("request_id")} if has_request_context() else {}


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        API_TITLE="Sieve",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Active learning as a service: register a pool of unlabeled items, ask "
                "which to label next, teach the labels."
            },
            "components": {
                "securitySchemes": {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "Needed once any key exists (`sieve keys create`); without keys, auth is off.",
                    },
                    "metricsToken": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "SIEVE_METRICS_TOKEN, for /metrics only.",
                    },
                }
            },
            # Either a key or none: which one applies depends on whether keys exist.
            "security": [{"apiKey": []}, {}],
        },
    )
    app.json.sort_keys = False  # answers keep the schemas' field order, and encode faster
    redis = redis or connect(settings, retry_commands=False)
    pools = Pools(redis, settings)
    api_keys = ApiKeys(redis)
    keys_required = auth.KeysSwitch(api_keys)

    api = ProblemApi(app)
    api.register_blueprint(pool_views.blp)
    api.register_blueprint(ops_views.blp)
    api.register_blueprint(labelstudio_views.blp)

    app.register_error_handler(SieveError, domain_error)
    # First, so that the clock starts before anything else runs for a request.
    exposition = metrics.install(app, ScrapeReads(redis), pools.queue)
    attach(
        app,
        AppState(
            settings=settings,
            pools=pools,
            labelstudio=LabelStudio(pools, LinkStore(redis)),
            api_keys=api_keys,
            keys_required=keys_required,
            metrics=exposition,
            openapi_yaml=api.spec.to_yaml,
        ),
    )

    @app.errorhandler(RedisError)
    def _storage_unavailable(error):
        # Redis down, failing over or full (noeviction refuses writes): nothing was half-done, retry later.
        log.warning("request %s: Redis error %s", g.get("request_id"), error)
        return problem(503, "storage is unavailable right now; retry shortly", headers={"Retry-After": "1"})

    @app.before_request
    def _start():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        if request.method in _BODY_METHODS and (request.content_length or request.headers.get("Transfer-Encoding")):
            if not request.is_json and not tabular_bodies.is_tabular():
                accepted = (
                    tabular_bodies.accepted_types()
                    if request.endpoint in tabular_bodies.ENDPOINTS
                    else "application/json"
                )
                return problem(
                    415,
                    f"send the body as {accepted}",
                    [{"field": "Content-Type", "message": f"got {request.mimetype or 'none'}; accepted: {accepted}"}],
                )
        return None

    cors.install(app, settings)  # before auth: a browser's preflight carries no credentials
    auth.install(app, api_keys, keys_required, pools.owner, settings.metrics_token)

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if settings.access_log and access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "route": request.url_rule.rule if request.url_rule is not None else None,
                    "status": response.status_code,
                    "method": request.method,
                    "duration_ms": round(1000 * (time.perf_counter() - g.started), 3) if "started" in g else None,
                },
            )
        return response

    return app
