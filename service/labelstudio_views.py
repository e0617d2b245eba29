"""/labelstudio: Sieve as Label Studio's ML backend (its URL is http://<sieve>/labelstudio)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from functools import partial

from flask import g, jsonify, request

from sieve.labelstudio.backend import LabelStudio
from sieve.service.labelstudio_schemas import (
    LabelStudioHealthSchema,
    LabelStudioModelVersionSchema,
    LabelStudioPredictAnswerSchema,
    LabelStudioPredictSchema,
    LabelStudioSetupSchema,
    LabelStudioVersionsSchema,
    LabelStudioWebhookAnswerSchema,
)
from sieve.service.parsing import SieveBlueprint
from sieve.service.problems import unauthorized
from sieve.service.responses import BODY_ERRORS, problems
from sieve.service.state import state

_challenge = partial(unauthorized, challenge='Basic realm="sieve-labelstudio"')

blp = SieveBlueprint(
    "labelstudio",
    __name__,
    url_prefix="/labelstudio",
    description=(
        "Label Studio's ML-backend protocol: set Label Studio's ML backend URL to http://<sieve>/labelstudio. "
        "Basic auth: SIEVE_LABELSTUDIO_BASIC_AUTH, or a Sieve API key as the password."
    ),
)

OPEN = frozenset({"/labelstudio/health"})
REPORTED = frozenset({"/labelstudio/setup", "/labelstudio/predict"})
"""Calls whose refusal Label Studio shows only as "<status> Client Error: <reason phrase> for url"."""

log = logging.getLogger("sieve.labelstudio")

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")
_MAX_REASON = 400


def service() -> LabelStudio:
    return state().labelstudio


def _basic_credentials() -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


@blp.before_request
def _authenticate():
    """Label Studio sends basic auth (its ML backend form; a webhook only with the header added to it).
    Accepted: the configured SIEVE_LABELSTUDIO_BASIC_AUTH, or any user name with a Sieve API key as the
    password, which makes the key's tenant own the project's pool. Neither needed while both are off."""
    if request.path in OPEN:
        return None
    configured = state().settings.labelstudio_basic_auth
    credentials = _basic_credentials()
    if credentials is not None:
        if configured and hmac.compare_digest(":".join(credentials).encode(), configured.encode()):
            return None
        tenant = state().api_keys.tenant_of(credentials[1])
        if tenant is not None:
            g.tenant = tenant
            return None
        return _challenge("these credentials are not valid for /labelstudio")
    if configured or state().keys_required():
        return _challenge(
            "/labelstudio needs basic auth: SIEVE_LABELSTUDIO_BASIC_AUTH, or a Sieve API key as the password"
        )
    return None


@blp.after_request
def _report_refusal(response):
    """A refused setup or predict is logged with its reason, and the reason goes in the status line too:
    Label Studio shows the operator the status line of a failed call, never its body."""
    if request.path not in REPORTED or not 400 <= response.status_code < 500:
        return response
    body = response.get_json(silent=True) if response.is_json else None
    detail = str(body.get("detail") or "") if isinstance(body, dict) else ""
    field = body.get("field") if isinstance(body, dict) else None
    try:  # parsed already, unless the body was refused for its size or shape
        sent = request.get_json(silent=True) if request.is_json and response.status_code != 413 else None
    except RecursionError:
        sent = None
    project = sent.get("project") if isinstance(sent, dict) and isinstance(sent.get("project"), str) else None
    log.warning(
        "Label Studio's %s was refused (%s): %s",
        request.path,
        response.status_code,
        detail,
        extra={
            "status": response.status_code,
            "field": field,
            "detail": detail,
            "project": project[:100] if project else None,
        },
    )
    if detail:
        # Printable ASCII only: the phrase goes in the status line, which a CR or LF would end.
        reason = _UNPRINTABLE.sub(" ", f"{field}: {detail}" if field else detail)[:_MAX_REASON]
        response.status = f"{response.status_code} {reason}"
    return response


@blp.route("/health", methods=["GET"])
@blp.response(200, LabelStudioHealthSchema)
def health():
    """Label Studio's connection check: answers at once, without auth."""
    return {"status": "UP", "model_class": "Sieve"}


@blp.route("/versions", methods=["GET"])
@blp.response(200, LabelStudioVersionsSchema)
@problems(blp)
def versions():
    """The current model version of each project connected under these credentials."""
    return service().versions(g.tenant)


@blp.route("/setup", methods=["POST"])
@blp.arguments(LabelStudioSetupSchema())
@blp.response(200, LabelStudioModelVersionSchema)
@problems(blp, *BODY_ERRORS)
def setup(body):
    """Connects a project: finds or creates its pool (the Choices are the classes): of text for a Text
    project, of the tasks' vectors for any other (an Image...)."""
    return service().setup(body, g.tenant)


@blp.route("/predict", methods=["POST"])
@blp.arguments(LabelStudioPredictSchema())
@blp.response(200, LabelStudioPredictAnswerSchema)
@problems(blp, *BODY_ERRORS)
def predict(body):
    """Predictions for tasks, scored so that Label Studio's lowest score is Sieve's most informative task;
    tasks Sieve has not seen join the pool."""
    return service().predict(body, g.tenant)


@blp.route("/webhook", methods=["POST"])
@blp.doc(
    requestBody={"content": {"application/json": {"schema": {}}}, "description": "Any Label Studio webhook event."}
)
@blp.response(200, LabelStudioWebhookAnswerSchema)
@problems(blp, 413, 415)
def webhook():
    """Annotations teach or unlabel, new tasks join the pool, START_TRAINING retrains; anything else, and any
    shape, is acknowledged with a 2xx (Label Studio never retries a webhook), saying what Sieve did."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # silent covers only ValueError; nesting deeper than Python's stack is ignored too
        body = None
    return jsonify(service().webhook(body, g.tenant))
