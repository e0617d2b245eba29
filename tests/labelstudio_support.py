"""Label Studio in the tests: the requests it really sent (tests/fixtures/labelstudio), and a small HTTP
server that stands in for its REST API and records what Sieve sends it."""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"


def captured(name: str) -> list[dict]:
    """The requests of one capture, in order: method, path (without the query), headers and JSON body."""
    out = []
    for line in (FIXTURES / name).read_text().splitlines():
        entry = json.loads(line)
        out.append(
            {
                "method": entry["method"],
                "path": entry["path"].split("?")[0],
                "headers": entry["headers"],
                "body": json.loads(entry["body"]) if entry["body"] else None,
            }
        )
    return out


def one(name: str, path: str, action: str | None = None) -> dict:
    """The first captured request to `path` (with this webhook action)."""
    return next(
        e for e in captured(name) if e["path"] == path and (action is None or (e["body"] or {}).get("action") == action)
    )


SLOTS = 8
"""Allowed origins of the test session. Each allowed FakeLabelStudio takes the next one in turn, so that a
late call of an earlier test's job reaches no server of a later test."""

_HELD: list[socket.socket] = []
"""Listening sockets kept for the whole test session, so that the running service can be told their origins
(SIEVE_LABELSTUDIO_ORIGINS) before any FakeLabelStudio serves on them."""
_turn = itertools.count()


def allowed_origins() -> list[str]:
    """The origins the test service allows, one per held socket."""
    while len(_HELD) < SLOTS:
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        held.listen(64)
        _HELD.append(held)
    return [f"http://127.0.0.1:{held.getsockname()[1]}" for held in _HELD]


def _drain(held: socket.socket) -> None:
    """Closes connections that reached the socket after an earlier test's server stopped."""
    held.setblocking(False)
    try:
        while True:
            held.accept()[0].close()
    except BlockingIOError:
        pass
    finally:
        held.setblocking(True)


def _sparse(task: dict, names: list[str]) -> dict:
    """A task as Label Studio's sparse fieldset (`include=`) gives it: it applies to the nested annotations too."""
    out = {k: v for k, v in task.items() if k in names}
    if isinstance(out.get("annotations"), list):
        out["annotations"] = [{k: v for k, v in a.items() if k in names} for a in out["annotations"]]
    return out


class FakeLabelStudio:
    """Answers the calls Sieve's workers make (tasks, predictions import, project read and update, model
    versions listed and deleted), records every request; `fail` makes it answer 500 (`fail_deletes`: only
    to DELETE), `redirect_to` a 302 to that URL, and `endless` a full page of tasks
    whatever page is asked for ("same": the same tasks each time; "fresh": new ones, with `total` saying
    1000). It serves on one of the allowed origins, or with `allowed=False` on a port no setting names."""

    IMPORT = re.compile(r"^/api/projects/(\d+)/import/predictions$")
    PROJECT = re.compile(r"^/api/projects/(\d+)/$")
    VERSIONS = re.compile(r"^/api/projects/(\d+)/model-versions/$")

    def __init__(self, allowed: bool = True):
        self.requests: list[dict] = []
        self.tasks: list[dict] | None = None
        """What GET /api/tasks/ pages through (unset: it answers 503, so that a sync changes nothing); when
        set, an import naming another task is refused."""
        self.versions: dict[str, int] = {}
        """Predictions per model version, as the imports brought them (a test may add other backends')."""
        self.model_version: str | None = None
        self.fail = False
        self.fail_deletes = False
        self.redirect_to: str | None = None
        self.endless: str | None = None
        self.page_size_max: int | None = None
        """As Label Studio's TASK_API_PAGE_SIZE_MAX: pages hold at most this many tasks, whatever is asked."""
        self.reported_total: int | None = None
        """The `total` the task pages report, when not the list's length (tasks deleted while read)."""
        self.allowed = allowed
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "authorization": self.headers.get("Authorization"),
                            "body": body,
                        }
                    )
                if fake.fail or (fake.fail_deletes and self.command == "DELETE"):
                    return self._answer(500, {"detail": "down for the test"})
                if fake.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", fake.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if fake.endless and self.command == "GET" and self.path.startswith("/api/tasks/?"):
                    query = parse_qs(urlsplit(self.path).query)
                    page, size = int(query["page"][0]), int(query["page_size"][0])
                    first = 1 if fake.endless == "same" else (page - 1) * size + 1
                    tasks = [{"id": i, "data": {"text": f"task {i}"}} for i in range(first, first + size)]
                    return self._answer(200, {"tasks": tasks, **({"total": 1000} if fake.endless == "fresh" else {})})
                if self.command == "POST" and self.path == "/api/token/refresh/":
                    return self._answer(200, {"access": f"access-for-{body['refresh']}"})
                if self.command == "GET" and self.path.startswith("/api/tasks/?") and fake.tasks is None:
                    return self._answer(503, {"detail": "the test gave no task list"})
                if self.command == "GET" and self.path.startswith("/api/tasks/?"):
                    query = parse_qs(urlsplit(self.path).query)
                    page, size = int(query["page"][0]), int(query["page_size"][0])
                    size = min(size, fake.page_size_max or size)
                    if page > 1 and (page - 1) * size >= len(fake.tasks):
                        return self._answer(404, {"detail": "Invalid page."})
                    tasks = fake.tasks[(page - 1) * size : page * size]
                    if "include" in query:  # as Label Studio: the named fields, in tasks and in annotations
                        tasks = [_sparse(t, query["include"][0].split(",")) for t in tasks]
                    total = len(fake.tasks) if fake.reported_total is None else fake.reported_total
                    return self._answer(200, {"tasks": tasks, "total": total})
                if self.command == "POST" and fake.IMPORT.match(self.path):
                    unknown = {p["task"] for p in body} - {t["id"] for t in fake.tasks or []}
                    if fake.tasks and unknown:  # as Label Studio: the whole import is refused
                        return self._answer(400, {"detail": f"task ID {min(unknown)} not found in project"})
                    with fake.lock:
                        for prediction in body:
                            name = prediction["model_version"]
                            fake.versions[name] = fake.versions.get(name, 0) + 1
                    return self._answer(201, {"created": len(body)})
                if self.command == "PATCH" and fake.PROJECT.match(self.path):
                    fake.model_version = body.get("model_version", fake.model_version)
                    return self._answer(200, {"id": int(fake.PROJECT.match(self.path).group(1)), **body})
                if self.command == "GET" and fake.PROJECT.match(self.path):
                    return self._answer(
                        200, {"id": int(fake.PROJECT.match(self.path).group(1)), "model_version": fake.model_version}
                    )
                if self.command == "GET" and fake.VERSIONS.match(self.path):
                    with fake.lock:
                        versions = dict(fake.versions)
                    return self._answer(200, versions)
                if self.command == "DELETE" and fake.VERSIONS.match(self.path):
                    with fake.lock:
                        deleted = fake.versions.pop(body["model_version"], 0)
                    return self._answer(200, {"deleted_predictions": deleted})
                return self._answer(404, {"detail": "not found"})

            do_POST = do_PATCH = do_GET = do_DELETE = _handle

        if not allowed:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
            self.server.socket.close()
            allowed_origins()
            held = _HELD[next(_turn) % SLOTS]
            self.server.socket, self.server.server_address = held, held.getsockname()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLabelStudio:
        if self.allowed:
            _drain(self.server.socket)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        if not self.allowed:
            self.server.server_close()  # a held socket stays for a later test

    def calls(self, method: str, pattern: re.Pattern) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == method and pattern.match(r["path"])]
