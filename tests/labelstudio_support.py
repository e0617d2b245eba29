"""Label Studio in the tests: the requests it really sent (tests/fixtures/labelstudio), and a small HTTP
server that stands in for its REST API and records what Sieve sends it."""
from __future__ import annotations

import json
import re
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
        out.append({"method": entry["method"], "path": entry["path"].split("?")[0], "headers": entry["headers"],
                    "body": json.loads(entry["body"]) if entry["body"] else None})
    return out


def one(name: str, path: str, action: str | None = None) -> dict:
    """The first captured request to `path` (with this webhook action)."""
    return next(e for e in captured(name) if e["path"] == path and
                (action is None or (e["body"] or {}).get("action") == action))


class FakeLabelStudio:
    """Answers the calls Sieve's workers make (tasks, predictions import, project update), records every
    request; `fail` makes it answer 500."""

    IMPORT = re.compile(r"^/api/projects/(\d+)/import/predictions$")
    PROJECT = re.compile(r"^/api/projects/(\d+)/$")

    def __init__(self):
        self.requests: list[dict] = []
        self.tasks: list[dict] = []
        """What GET /api/tasks/ pages through; when set, an import naming another task is refused."""
        self.fail = False
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
                    fake.requests.append({"method": self.command, "path": self.path,
                                          "authorization": self.headers.get("Authorization"), "body": body})
                if fake.fail:
                    return self._answer(500, {"detail": "down for the test"})
                if self.command == "POST" and self.path == "/api/token/refresh/":
                    return self._answer(200, {"access": f"access-for-{body['refresh']}"})
                if self.command == "GET" and self.path.startswith("/api/tasks/?"):
                    query = parse_qs(urlsplit(self.path).query)
                    page, size = int(query["page"][0]), int(query["page_size"][0])
                    if page > 1 and (page - 1) * size >= len(fake.tasks):
                        return self._answer(404, {"detail": "Invalid page."})
                    return self._answer(200, {"tasks": fake.tasks[(page - 1) * size:page * size],
                                              "total": len(fake.tasks)})
                if self.command == "POST" and fake.IMPORT.match(self.path):
                    unknown = {p["task"] for p in body} - {t["id"] for t in fake.tasks}
                    if fake.tasks and unknown:  # as Label Studio: the whole import is refused
                        return self._answer(400, {"detail": f"task ID {min(unknown)} not found in project"})
                    return self._answer(201, {"created": len(body)})
                if self.command == "PATCH" and fake.PROJECT.match(self.path):
                    return self._answer(200, {"id": int(fake.PROJECT.match(self.path).group(1)), **body})
                return self._answer(404, {"detail": "not found"})

            do_POST = do_PATCH = do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeLabelStudio":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, pattern: re.Pattern) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["method"] == method and pattern.match(r["path"])]
