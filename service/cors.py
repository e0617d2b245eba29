"""Cross-origin requests from browser front ends (CORS): off unless SIEVE_CORS_ORIGINS lists origins.

CORS only tells a browser which web pages may read the answers; it keeps no one else out. The API key is
what authorizes a call, and no cookie is ever read, so no answer allows credentials.
"""

from __future__ import annotations

from functools import cache

from flask import Flask, Response, request

from sieve.settings import Settings

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id")
"""The request headers a front end may send beyond the CORS-safelisted ones."""
EXPOSED_HEADERS = ("Location", "Retry-After", "X-Request-ID")
"""The answer headers a front end may read beyond the CORS-safelisted ones."""
MAX_AGE_SECONDS = 600
"""How long a browser may reuse a preflight's answer: a changed setting reaches it within ten minutes."""


def _is_preflight() -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def install(app: Flask, settings: Settings) -> None:
    """Answers preflights and marks answers for the allowed origins. Install it before auth: a preflight
    carries no credentials, and a browser refuses any preflight answer but a 2xx."""
    allowed = frozenset(settings.cors_origins)
    if not allowed:
        return
    any_origin = allowed == {"*"}

    @cache
    def methods() -> str:
        served = {method for rule in app.url_map.iter_rules() for method in rule.methods or ()}
        return ", ".join(sorted(served - {"HEAD", "OPTIONS"}))

    @app.before_request
    def _preflight():
        # Nothing runs for a preflight: it only asks what the real request may do.
        return Response(status=204) if _is_preflight() else None

    @app.after_request
    def _allow(response: Response) -> Response:
        if not any_origin:
            # The answer depends on the Origin header (present for one origin, absent for another): a cache
            # must not serve one origin's answer to another.
            response.vary.add("Origin")
        sent = request.headers.get("Origin")
        if sent is None or not (any_origin or sent.lower() in allowed):
            return response
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*" if any_origin else sent
        headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        if _is_preflight():
            headers["Access-Control-Allow-Methods"] = methods()
            headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
            headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        return response
