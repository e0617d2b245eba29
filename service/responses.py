"""Documents which problem answers an endpoint can give, by status code."""

from __future__ import annotations

from flask_smorest import Blueprint

from sieve.service.problems import problem_response

BODY_ERRORS = (400, 413, 415, 422)
"""What any endpoint that reads a JSON body may answer besides its own errors."""


def problems(blp: Blueprint, *codes: int):
    """Adds the named problem+json responses to an endpoint's OpenAPI description, and 401: every
    endpoint described this way needs credentials once they are configured."""

    def decorate(view):
        for code in sorted({401, *codes}):
            view = blp.alt_response(code, response=problem_response(code))(view)
        return view

    return decorate
