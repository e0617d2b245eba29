"""gunicorn for the API: gevent workers, and problem+json for the errors gunicorn answers itself.

gunicorn's threaded and sync workers give a thread to a connection as soon as its first byte arrives, and
keep it until the request head is complete: a hundred clients that never finish their head take every
thread, and so does a long poll (`wait=`). Under gevent a connection costs a greenlet, and a waiting
request a sleep on the event loop, so neither holds anything another client needs. gunicorn's gevent
worker reads each request head under a timeout (the keep-alive setting), so a head that never ends
frees its greenlet then; `worker_connections` bounds the greenlets of a process.

Requests gunicorn refuses before the application sees them (a request line or header over gunicorn's
limits, a malformed request line) would be answered with gunicorn's HTML page; `ProblemWorker` answers
them as application/problem+json like every other error.
"""

from __future__ import annotations

import http
import json
import uuid

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.ggevent import GeventWorker

_CLIENT_FAULTS = (
    # (gunicorn's exception, status, the part of the request at fault), most specific first
    (errors.LimitRequestLine, 414, "url"),
    (errors.LimitRequestHeaders, 431, "headers"),
    (errors.ExpectationFailed, 417, "Expect"),
    (errors.UnsupportedTransferCoding, 501, "Transfer-Encoding"),
    (errors.InvalidRequestMethod, 400, "method"),
    (errors.InvalidHTTPVersion, 400, "version"),
    (
        (errors.InvalidHeader, errors.InvalidHeaderName, errors.ObsoleteFolding, errors.InvalidSchemeHeaders),
        400,
        "headers",
    ),
    ((errors.InvalidChunkSize, errors.ChunkMissingTerminator, errors.InvalidChunkExtension), 400, "body"),
    (errors.ForbiddenProxyRequest, 403, "proxy"),
    (errors.ParseException, 400, "request line"),
)

_MAX_DETAIL = 200
"""gunicorn's messages may quote what the client sent: they are cut to this many characters."""


def client_fault(exc: BaseException) -> tuple[int, str] | None:
    """(status, field) when gunicorn refused the request for something the client sent, else None."""
    if isinstance(exc, (errors.ConfigurationProblem, errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)):
        return None  # the server's or the application's fault
    for kinds, status, field in _CLIENT_FAULTS:
        if isinstance(exc, kinds):
            return status, field
    return None


def problem_bytes(status: int, field: str, detail: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 answer carrying an RFC 9457 problem; the connection closes after it."""
    detail = detail[:_MAX_DETAIL]
    body = json.dumps(
        {
            "type": "about:blank",
            "title": http.HTTPStatus(status).phrase,
            "status": status,
            "detail": f"{field}: {detail}",
            "request_id": request_id,
            "field": field,
            "errors": [{"field": field, "message": detail}],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemWorker(GeventWorker):
    """gunicorn's gevent worker, answering the requests it refuses itself as problem+json."""

    def handle_error(self, req, client, addr, exc):
        fault = client_fault(exc)
        if fault is None:
            return super().handle_error(req, client, addr, exc)
        status, field = fault
        request_id = uuid.uuid4().hex
        self.log.warning("request %s refused by the server (%s): %s", request_id, status, exc)
        try:
            util.write_nonblock(client, problem_bytes(status, field, str(exc), request_id))
        except OSError:
            self.log.debug("could not send the refusal of request %s", request_id)
            return
        # The rest of an over-long request may still be on its way: closing with it unread would reset the
        # connection, and the client could lose the answer before reading it.
        util.close_graceful(client)
