"""A Python client of Sieve's HTTP API, for services that drive an active-learning loop.

    from sieve.client import Client

    sieve = Client("http://127.0.0.1:8000", api_key="...")
    pool = sieve.create_pool(items=[{"id": "a", "features": [0.1, 0.2]}, ...], name="reviews")["pool_id"]
    batch = sieve.query(pool, k=10, wait=5, annotator="ann")
    sieve.teach(pool, {item["id"]: "spam" for item in batch["items"]})

Every call retries what failed without being applied, or what is safe to apply twice: a connection that
could not be made, a 429 or 503 (after its Retry-After), and, for calls that change nothing when repeated,
a connection lost before the answer. Creates, added items and labels are made safe to repeat by an
Idempotency-Key drawn once per call and sent with every attempt of it, over the very same body bytes: the
API then applies the call once and answers a replay as it answered the first attempt. Any other answer
than the one the endpoint documents raises `ApiError`, carrying the RFC 9457 problem the API sent.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

ARROW_STREAM = "application/vnd.apache.arrow.stream"
"""The media type of an Arrow IPC stream: how `add_items_arrow` sends items."""

RETRY_STATUSES = frozenset({429, 503})
"""Answers saying the call was refused before anything changed: too many requests, storage unavailable."""

MAX_RETRY_AFTER = 30.0
"""The longest a Retry-After is obeyed, in seconds, so that a wrong header cannot stall a caller for hours."""


class SieveClientError(Exception):
    """Anything this client raises about an answer of the API."""


class ApiError(SieveClientError):
    """The API answered another status than the call expects, usually with a problem+json document."""

    def __init__(self, method: str, url: str, response: requests.Response):
        self.method, self.url, self.response = method, url, response
        self.status: int = response.status_code
        problem = _problem(response)
        self.problem: dict = problem
        self.title: str | None = problem.get("title")
        self.detail: str | None = problem.get("detail")
        self.field: str | None = problem.get("field")
        self.errors: list[dict] = problem.get("errors") or []
        self.request_id: str | None = problem.get("request_id")
        said = ": ".join(part for part in (self.title, self.detail) if part)
        super().__init__(f"{method} {url}: {self.status} {said}".rstrip())

    @property
    def retry_after(self) -> float | None:
        return _retry_after(self.response)

    @property
    def said(self) -> str:
        """What the API said, in one phrase: the problem's detail, else its title, else the status."""
        return self.detail or self.title or f"HTTP {self.status}"


class StillPending(SieveClientError):
    """Something the API computes in the background was not ready in the time the caller allowed."""

    def __init__(self, message: str, answer: dict | None = None):
        super().__init__(message)
        self.answer = answer or {}
        self.job_id: str | None = self.answer.get("job_id")


def _problem(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    # Not JSON (a proxy's page, say): the text, shortened, stands for the detail.
    return {"status": response.status_code, "detail": response.text[:500] or response.reason}


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds, given as seconds or as an HTTP date; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _never_sent(error: requests.RequestException) -> bool:
    """True when the request cannot have reached the API: the connection itself failed."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError)


def _jsonable(value):
    # numpy arrays and scalars, without importing numpy: both know how to become Python values.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _labels(labels, split: str | None) -> list[dict]:
    """Label entries from a mapping {id: label}, (id, label) pairs, or entries {id, label[, split]}."""
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    entries = []
    for entry in pairs:
        entry = dict(entry) if isinstance(entry, Mapping) else {"id": entry[0], "label": entry[1]}
        if split is not None:
            entry.setdefault("split", split)
        entries.append(entry)
    return entries


def _body(**fields) -> dict:
    return {name: value for name, value in fields.items() if value is not None}


class Client:
    """One API base URL on one keep-alive requests.Session; give each thread a Client of its own.

    `retries`: how many times a call is repeated (0: never, and then no Idempotency-Key is sent);
    `backoff`: the first pause, in seconds, after a failed connection (doubled each time, with jitter)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.25,
        session: requests.Session | None = None,
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # -- one call ------------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        expect: int | tuple[int, ...] = 200,
        *,
        body: Any = None,
        params: dict | None = None,
        idempotent: bool = True,
        idempotency_key: str | None = None,
        headers: dict | None = None,
        gone_after_retry: bool = False,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> requests.Response:
        """Sends one logical call, retrying as the module says; the answer, once its status is in `expect`.

        `idempotent` says whether the call may be repeated after a connection lost mid-call; a body is
        serialized once, so every attempt sends the same bytes (the API hashes them under an
        Idempotency-Key). `body` is sent as JSON; `content`, bytes already encoded, as `content_type`. With
        `gone_after_retry`, a 404 after a connection lost mid-call counts as done."""
        expected = (expect,) if isinstance(expect, int) else expect
        url = self.url + path
        headers = dict(headers or {})
        data = content
        if content is not None:
            headers["Content-Type"] = content_type
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), default=_jsonable).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        attempt, maybe_applied = 0, False
        while True:
            attempt += 1
            try:
                response = self.session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt > self.retries or not (idempotent or _never_sent(error)):
                    raise
                maybe_applied = maybe_applied or not _never_sent(error)
                self._pause(attempt, None)
                continue
            if response.status_code in expected or (gone_after_retry and maybe_applied and response.status_code == 404):
                return response
            if response.status_code in RETRY_STATUSES and attempt <= self.retries:
                self._pause(attempt, _retry_after(response))
                continue
            raise ApiError(method, url, response)

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is None:
            retry_after = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random())
        time.sleep(min(retry_after, MAX_RETRY_AFTER))

    def _json(self, method: str, path: str, expect: int = 200, **kwargs) -> dict:
        return self.call(method, path, expect, **kwargs).json()

    def _key(self, idempotency_key: str | None) -> str | None:
        # A client that never repeats a call needs no key, and spares the API storing the first answer.
        if idempotency_key is None and self.retries > 0:
            return uuid.uuid4().hex
        return idempotency_key

    # -- pools ---------------------------------------------------------------------------------------

    def create_pool(
        self,
        items: Iterable[dict] | None = None,
        labels=None,
        *,
        name: str | None = None,
        classes: list | None = None,
        model: dict | None = None,
        strategy: str | None = None,
        random_state: int | None = None,
        featurizer: dict | None = None,
        stopping: dict | None = None,
        split: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        """Creates a pool (optionally with items and labels, as `teach` takes them); its status."""
        body = _body(
            name=name,
            items=list(items) if items is not None else None,
            labels=_labels(labels, split) if labels is not None else None,
            classes=classes,
            model=model,
            strategy=strategy,
            random_state=random_state,
            featurizer=featurizer,
            stopping=stopping,
        )
        return self._json("POST", "/v1/pools", 201, body=body, idempotency_key=self._key(idempotency_key))

    def add_items(self, pool_id: str, items: Iterable[dict], idempotency_key: str | None = None) -> dict:
        """Adds items, all or nothing: {added, n_items, version, job_id}."""
        return self._json(
            "POST",
            f"/v1/pools/{pool_id}/items",
            202,
            body={"items": list(items)},
            idempotency_key=self._key(idempotency_key),
        )

    def create_pool_arrow(self, body: bytes, idempotency_key: str | None = None) -> dict:
        """Creates a pool from one Arrow IPC stream: its rows are the items (and labels, from a `label`
        column), its schema's `sieve` metadata the create's other fields as JSON; the pool's status."""
        return self._json(
            "POST",
            "/v1/pools",
            201,
            content=body,
            content_type=ARROW_STREAM,
            idempotency_key=self._key(idempotency_key),
        )

    def add_items_arrow(self, pool_id: str, body: bytes, idempotency_key: str | None = None) -> dict:
        """Adds the items of one Arrow IPC stream (columns as sieve.load.wire says), all or nothing."""
        return self._json(
            "POST",
            f"/v1/pools/{pool_id}/items",
            202,
            content=body,
            content_type=ARROW_STREAM,
            idempotency_key=self._key(idempotency_key),
        )

    def present_ids(self, pool_id: str, ids: Iterable[str]) -> list[str]:
        """Which of these ids the pool holds, in the order asked."""
        return self._json("POST", f"/v1/pools/{pool_id}/items/lookup", body={"ids": list(ids)})["present"]

    def status(self, pool_id: str) -> dict:
        return self._json("GET", f"/v1/pools/{pool_id}")

    def history(self, pool_id: str) -> dict:
        return self._json("GET", f"/v1/pools/{pool_id}/history")

    def list_pools(self, after: str | None = None, limit: int | None = None) -> dict:
        """One page of the caller's pools: {pools, next}."""
        return self._json("GET", "/v1/pools", params=_body(after=after, limit=limit))

    def iter_pools(self, page_size: int | None = None) -> Iterator[dict]:
        """Every pool of the caller, following the pages."""
        after = None
        while True:
            page = self.list_pools(after, page_size)
            yield from page["pools"]
            after = page.get("next")
            if not after:
                return

    def set_stopping(self, pool_id: str, stopping: dict) -> dict:
        """Replaces the pool's stopping policy; the status under the new one."""
        return self._json("PATCH", f"/v1/pools/{pool_id}", body={"stopping": stopping})

    def delete_pool(self, pool_id: str) -> None:
        # A delete repeated after a connection lost mid-call may find its own work done: the pool is gone.
        self.call("DELETE", f"/v1/pools/{pool_id}", 204, gone_after_retry=True)

    def learning_curve(self, pool_id: str, image_format: str = "png", metric: str | None = None) -> bytes:
        return self.call(
            "GET", f"/v1/pools/{pool_id}/learning_curve.{image_format}", params=_body(metric=metric)
        ).content

    # -- the loop ------------------------------------------------------------------------------------

    def query(
        self,
        pool_id: str,
        k: int = 10,
        *,
        strategy: str | None = None,
        wait: float | None = None,
        lease_seconds: float | None = None,
        annotator: str | None = None,
        pending_timeout: float = 60.0,
    ) -> dict:
        """The k most informative unlabeled items, leased to the caller (unless lease_seconds=0).

        `wait` lets the API wait up to that many seconds for a ranking that reflects every label. While the
        API answers 202 (no ranking yet for a new pool or strategy) this asks again after each Retry-After,
        for up to `pending_timeout` seconds, then raises StillPending (at once with pending_timeout=0)."""
        params = _body(k=k, strategy=strategy, wait=wait, lease_seconds=lease_seconds, annotator=annotator)
        # A repeated query leases more items, which nobody would see until their lease ends; unless the
        # items are not leased, or leased to a named annotator, whom a repeat hands the same items again.
        idempotent = lease_seconds == 0 or annotator is not None
        deadline = time.monotonic() + pending_timeout
        while True:
            response = self.call("GET", f"/v1/pools/{pool_id}/query", (200, 202), params=params, idempotent=idempotent)
            answer = response.json()
            if response.status_code == 200:
                return answer
            pause = _retry_after(response) or 1.0
            if time.monotonic() + pause > deadline:
                raise StillPending(f"pool {pool_id}: {answer.get('detail') or 'the ranking is pending'}", answer)
            time.sleep(min(pause, MAX_RETRY_AFTER))

    def release(self, pool_id: str, ids: Iterable[str], annotator: str | None = None) -> dict:
        """Ends the leases of these items early: {released}."""
        return self._json("POST", f"/v1/pools/{pool_id}/release", body=_body(ids=list(ids), annotator=annotator))

    @contextmanager
    def leased(self, pool_id: str, k: int = 10, **query):
        """Queries (as `query`) and yields the answer; on leaving, releases every item it returned, so that
        the ones not taught go to the next caller now rather than when their lease ends. Releasing a
        taught item changes nothing: queries never hand out labeled items."""
        answer = self.query(pool_id, k, **query)
        try:
            yield answer
        finally:
            ids = [item["id"] for item in answer["items"]]
            if ids:
                self.release(pool_id, ids, query.get("annotator"))

    def teach(self, pool_id: str, labels, *, split: str | None = None, idempotency_key: str | None = None) -> dict:
        """Records labels, all or nothing: {accepted, labels_version, job_id}; a retrain follows.

        `labels`: a mapping {id: label}, (id, label) pairs, or entries {id, label, split}; `split="eval"`
        puts the entries that name none in the evaluation split."""
        return self._json(
            "POST",
            f"/v1/pools/{pool_id}/teach",
            202,
            body={"labels": _labels(labels, split)},
            idempotency_key=self._key(idempotency_key),
        )

    def unlabel(self, pool_id: str, ids: Iterable[str]) -> dict:
        """Removes these items' labels: {removed, labels_version, job_id}. Unlabeling twice changes nothing."""
        return self._json("POST", f"/v1/pools/{pool_id}/unlabel", 202, body={"ids": list(ids)})

    def predict(self, pool_id: str, *, features=None, texts=None, ids=None) -> dict:
        """Predictions of the current model for exactly one of raw features, texts, or the pool's item ids."""
        return self._json(
            "POST",
            f"/v1/pools/{pool_id}/predict",
            body=_body(features=features, texts=texts, ids=list(ids) if ids is not None else None),
        )

    # -- waiting for the workers ---------------------------------------------------------------------

    def job(self, job_id: str) -> dict:
        """A refresh job's state (the `job_id` of a 202 answer)."""
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait_for_job(self, job_id: str, timeout: float = 300.0, interval: float = 0.1) -> dict:
        """Polls the job until it finished or failed; its last state."""
        return self._poll(
            lambda: self.job(job_id),
            lambda job: job["status"] in ("finished", "failed", "stopped", "canceled"),
            timeout,
            interval,
            f"job {job_id}",
        )

    def wait_for_model(self, pool_id: str, labels_version: int, timeout: float = 300.0, interval: float = 0.1) -> dict:
        """Polls the status until the pool's model was trained on at least `labels_version` (a teach answer's);
        the status then."""
        return self._poll(
            lambda: self.status(pool_id),
            lambda status: (status["model_version"] or 0) >= labels_version,
            timeout,
            interval,
            f"pool {pool_id}'s model at labels version {labels_version}",
        )

    def wait_idle(
        self, pool_id: str, timeout: float = 300.0, interval: float = 0.05, raise_on_error: bool = False
    ) -> dict:
        """Polls the status until the rankings reflect every change and no retrain is queued or running."""

        def idle(status: dict) -> bool:
            retrain = status["retrain"]
            if raise_on_error and retrain.get("last_error"):
                raise SieveClientError(f"pool {pool_id}: retrain failed: {retrain['last_error']}")
            return status["ranked_version"] == status["version"] and not retrain["queued"] and not retrain["running"]

        return self._poll(lambda: self.status(pool_id), idle, timeout, interval, f"pool {pool_id} to settle")

    @staticmethod
    def _poll(read, done, timeout: float, interval: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if done(value):
                return value
            if time.monotonic() > deadline:
                raise StillPending(f"timed out after {timeout} s waiting for {what}", value)
            time.sleep(interval)

    # -- the service ---------------------------------------------------------------------------------

    def ready(self) -> dict:
        """/readyz: {status, redis, workers}, also while the API cannot reach Redis (a 503)."""
        return self._json("GET", "/readyz", (200, 503))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
