"""Label Studio's REST API, as far as Sieve uses it: import predictions, set a project's model version, delete
the predictions of a model version."""

from __future__ import annotations

from collections.abc import Collection

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from sieve.limits import MAX_POOL_ITEMS
from sieve.origins import OriginError, check_resolved, origin, refuse_address

HTTP_TIMEOUT_SECONDS = 30
"""How long one call to Label Studio may take before the push fails (and RQ retries it)."""

PREDICTIONS_PER_CALL = 2000
"""Predictions sent in one import call; Label Studio stores them in batches of 500 anyway."""


TASKS_PER_PAGE = 500
"""Tasks read per page when a project's tasks are read into its pool."""

TASK_FIELDS = "id,data,annotations,result,was_cancelled"
"""The fields a reading of tasks asks for. `fields=all` adds annotations, predictions and drafts; `include`
(Label Studio's sparse fieldset, which applies to the annotations inside a task too) keeps only these, so a
project's old predictions are never read."""

MAX_TASK_PAGES = -(-MAX_POOL_ITEMS // TASKS_PER_PAGE)
"""Most pages one reading of a project's tasks asks for: a pool holds no more tasks than this."""


class LabelStudioError(RuntimeError):
    """Label Studio refused a call; the message names the call and the status, never the token."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _PeerChecked:
    """Checks the address a connection really reached: the host may resolve elsewhere than when it was
    checked before the call."""

    def _new_conn(self):
        sock = super()._new_conn()
        try:
            refuse_address(sock.getpeername()[0])
        except OriginError as error:
            sock.close()
            raise NewConnectionError(self, f"{self.host} {error}") from None
        return sock


class _CheckedHTTPConnection(_PeerChecked, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PeerChecked, HTTPSConnection):
    pass


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": _CheckedHTTPConnection}),
            "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": _CheckedHTTPSConnection}),
        }


def checked_session() -> requests.Session:
    """A session whose connections are refused when they reach an address no origin may lead to."""
    session = requests.Session()
    # Through an HTTP(S)_PROXY from the environment the connected peer would be the proxy, and the address
    # Label Studio's name resolves to would go unchecked: its calls go direct.
    session.trust_env = False
    session.mount("http://", _CheckedAdapter())
    session.mount("https://", _CheckedAdapter())
    return session


class LabelStudioClient:
    def __init__(
        self,
        url: str,
        token: str,
        allowed_origins: Collection[str] | None = None,
        session: requests.Session | None = None,
    ):
        """`allowed_origins`: the origins `url` must be among (None: an operator-given URL, called as is)."""
        self.url = url.rstrip("/")
        self._token = token
        self._allowed = allowed_origins
        self._session = session or checked_session()
        self._authorization: str | None = None
        self.stopped: str | None = None
        """Why the last reading of tasks stopped before Label Studio said it was done, if it did."""

    def __repr__(self) -> str:
        return f"LabelStudioClient({self.url!r})"

    def _auth(self) -> str:
        if self._authorization is None:
            if self._token.count(".") == 2:
                # A personal access token (a JWT refresh token) is exchanged for a short-lived access token.
                answer = self._call("POST", "/api/token/refresh/", json={"refresh": self._token}, auth=False)
                self._authorization = f"Bearer {answer.json()['access']}"
            else:
                self._authorization = f"Token {self._token}"  # a legacy token, what /setup sends
        return self._authorization

    def _call(self, method: str, path: str, auth: bool = True, missing_ok: bool = False, **kwargs):
        """The answer of a call that succeeded (None for a 404 when `missing_ok`); LabelStudioError else."""
        self._check_origin()
        headers = {"Authorization": self._auth()} if auth else {}
        try:
            answer = self._session.request(
                method, self.url + path, headers=headers, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False, **kwargs
            )
        except requests.RequestException as error:
            raise LabelStudioError(f"{method} {path}: {type(error).__name__}") from None
        if missing_ok and answer.status_code == 404:
            return None
        if answer.is_redirect or not 200 <= answer.status_code < 300:
            # Redirects are never followed: they could lead anywhere, with the token.
            raise LabelStudioError(f"{method} {path}: {answer.status_code} {answer.text[:300]}", answer.status_code)
        return answer

    def _check_origin(self) -> None:
        """Before every call: the URL is still an allowed origin, and its host leads nowhere forbidden."""
        try:
            if self._allowed is not None and origin(self.url) not in self._allowed:
                raise OriginError("is not in SIEVE_LABELSTUDIO_ORIGINS")
            check_resolved(self.url)
        except OriginError as error:
            raise LabelStudioError(f"{self.url} {error}") from None

    def tasks(self, project_id: int, annotations: bool = True):
        """The project's tasks (with their annotations), a page at a time. Reading ends at the project's
        reported total, at an empty page, or (without a total) at a short page; `stopped` says why when the
        listing may be partial: MAX_TASK_PAGES read, a page that brings no task not read already (a Label
        Studio that always answers a full page ends too), or the pages ended before the reported total (a
        Label Studio that caps page_size, or tasks deleted while reading) — a partial listing must not be
        taken for the whole project."""
        self.stopped = None
        seen: set = set()
        total = None
        for page in range(1, MAX_TASK_PAGES + 1):
            answer = self._call(
                "GET",
                "/api/tasks/",
                missing_ok=page > 1,
                params={
                    "project": project_id,
                    "fields": "all" if annotations else "",
                    "include": TASK_FIELDS if annotations else "id",
                    "page": page,
                    "page_size": TASKS_PER_PAGE,
                },
            )
            body = answer.json() if answer is not None else {}
            tasks = body.get("tasks") if isinstance(body, dict) else None
            tasks = tasks if isinstance(tasks, list) else []
            reported = body.get("total") if isinstance(body, dict) else None
            if type(reported) is int and reported >= 0:
                total = reported
            ids = {task.get("id") for task in tasks if isinstance(task, dict) and type(task.get("id")) is int}
            if tasks and seen.issuperset(ids):
                self.stopped = f"page {page} brought no task not read already"
                return
            seen |= ids
            if tasks:
                yield tasks
            if total is not None and len(seen) >= total:
                return
            if not tasks or (total is None and len(tasks) < TASKS_PER_PAGE):
                if total is not None:
                    self.stopped = f"listed {len(seen)} tasks of the {total} Label Studio reported"
                return
        self.stopped = f"stopped after {MAX_TASK_PAGES} pages of {TASKS_PER_PAGE} tasks"

    def import_predictions(self, project_id: int, predictions: list[dict]) -> int:
        """Stores predictions (each with its task id); how many Label Studio created."""
        created = 0
        for start in range(0, len(predictions), PREDICTIONS_PER_CALL):
            answer = self._call(
                "POST",
                f"/api/projects/{project_id}/import/predictions",
                json=predictions[start : start + PREDICTIONS_PER_CALL],
            )
            created += int(answer.json().get("created", 0))
        return created

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Makes the project's queue and score sort follow the predictions of this version."""
        self._call("PATCH", f"/api/projects/{project_id}/", json={"model_version": model_version})

    def model_version(self, project_id: int) -> str | None:
        """The model version the project follows now."""
        try:
            body = self._call("GET", f"/api/projects/{project_id}/").json()
        except ValueError:
            body = None
        version = body.get("model_version") if isinstance(body, dict) else None
        return version if isinstance(version, str) else None

    def model_versions(self, project_id: int) -> dict[str, int]:
        """The model versions the project's predictions carry, each with its number of predictions."""
        path = f"/api/projects/{project_id}/model-versions/"
        try:
            body = self._call("GET", path).json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LabelStudioError(f"GET {path}: not a JSON object")
        return {name: count for name, count in body.items() if type(count) is int}

    def delete_model_version(self, project_id: int, model_version: str) -> int:
        """Deletes every prediction of this model version in the project; how many Label Studio deleted."""
        # Label Studio's own call for it: the version goes in the body, and the path's slash is needed, as a
        # redirect to it would not be followed.
        answer = self._call(
            "DELETE", f"/api/projects/{project_id}/model-versions/", json={"model_version": model_version}
        )
        try:
            body = answer.json()
        except ValueError:
            body = None
        deleted = body.get("deleted_predictions") if isinstance(body, dict) else None
        return deleted if type(deleted) is int else 0
