"""Every non-2xx answer as application/problem+json (RFC 9457), naming the field at fault."""

from __future__ import annotations

import http
import logging

import marshmallow as ma
from flask import current_app, g, jsonify
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from sieve.core.errors import Conflict, InvalidInput, NotFound, SieveError

PROBLEM_CONTENT_TYPE = "application/problem+json"

log = logging.getLogger("sieve.service")

_STATUS_OF = {InvalidInput: 422, NotFound: 404, Conflict: 409}


class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(metadata={"description": "Where the fault is, e.g. `items[3].features` or `k`."})
    message = ma.fields.String()


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(metadata={"description": "`about:blank`: the status code says it all."})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    field = ma.fields.String(metadata={"description": "The first field at fault, when there is one."})
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema))
    request_id = ma.fields.String()


def _flatten(messages, path: str = "") -> list[dict]:
    """webargs' nested {'json': {'items': {3: {'id': [...]}}}} as [{'field': 'items[3].id', ...}]."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            if path == "" and key in ("json", "query", "querystring", "form", "headers", "files"):
                out += _flatten(value, "body" if key in ("json", "form") and not isinstance(value, dict) else "")
            elif isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                out += _flatten(value, f"{path}[{key}]")
            elif key == "_schema":
                out += _flatten(value, path or "body")
            else:
                out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            return [{"field": path or "body", "message": m} for m in messages]
        return [e for m in messages for e in _flatten(m, path)]
    return [{"field": path or "body", "message": str(messages)}]


def problem(status: int, detail: str, errors: list[dict] | None = None, headers: dict | None = None):
    body = {
        "type": "about:blank",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": getattr(g, "request_id", None),
    }
    if errors:
        body["errors"] = errors[:50]
        body["field"] = errors[0]["field"]
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_error(error: SieveError):
    status = next((code for cls, code in _STATUS_OF.items() if isinstance(error, cls)), 400)
    errors = [{"field": error.field, "message": error.message}] if error.field else None
    return problem(status, error.message, errors)


def unauthorized(detail: str, challenge: str):
    """A 401 naming the Authorization header, with the WWW-Authenticate challenge a client should answer."""
    return problem(
        401, detail, [{"field": "Authorization", "message": detail}], headers={"WWW-Authenticate": challenge}
    )


def problem_response(status: int) -> str:
    """The name of the OpenAPI response component documenting a problem answer of this status."""
    return f"{http.HTTPStatus(status).name}_PROBLEM"


class ProblemApi(Api):
    """flask-smorest's Api, answering and documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_PROBLEM"

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        if error.code == 413 and "messages" not in data:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            return problem(
                413,
                f"body: larger than the {limit} bytes allowed",
                [{"field": "body", "message": f"must be at most {limit} bytes"}],
            )
        if error.code >= 500:
            original = getattr(error, "original_exception", None)
            log.error("request %s failed", getattr(g, "request_id", "-"), exc_info=original or error)
            return problem(error.code, "the server failed to answer; quote the request id when reporting it")
        errors = _flatten(data["messages"]) if "messages" in data else None
        detail = data.get("message") or error.description or error.name
        if errors:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(error.code, detail, errors, data.get("headers"))

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        # flask-smorest documents its error responses as application/json; ours are registered under names
        # of their own, as application/problem+json, and only for the statuses that are errors.
        for status in http.HTTPStatus:
            if status >= 400:
                self._document_problem(problem_response(status), status.phrase)
        self._document_problem(self.DEFAULT_ERROR_RESPONSE_NAME, "Default error response")

    def _document_problem(self, name: str, description: str) -> None:
        content = {PROBLEM_CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}
        self.spec.components.response(name, {"description": description, "content": content}, lazy=True)
