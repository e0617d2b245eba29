"""The refresh job's side of storage: take a consistent snapshot, then publish with compare-and-set."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from redis import Redis

from sieve.core import evaluation
from sieve.core.history import Labeled, Review
from sieve.core.selection import ALL_STRATEGIES
from sieve.core.stopping import StoppingPolicy
from sieve.limits import ROWS_PER_CHUNK
from sieve.storage.features import SPARSE, stored_chunk_rows
from sieve.storage.keys import POOL_INDEX, PoolKeys
from sieve.storage.replies import int_or_none, pool_not_found, text
from sieve.storage.scripts import Scripts


@dataclass(frozen=True)
class Snapshot:
    """A pool as one refresh sees it: labels and counts read at one instant."""

    pool_id: str
    version: int
    labels_version: int
    n_items: int
    dim: int
    model_spec: dict
    seed: int
    strategies: list[str]
    """What to rank besides the cheap strategies: the pool's default and those queries asked for."""
    model_version: int | None
    ranked_version: int | None
    labeled_rows: np.ndarray
    label_texts: list[str]
    eval_rows: np.ndarray
    eval_texts: list[str]
    eval_source: str
    """'audit' when every evaluation item is an audit item, else 'eval'."""
    policy: StoppingPolicy
    history: list[dict]
    """Every model version's history entry so far."""
    stop_rows: np.ndarray | None
    """The pool's stop set; None until the first model chooses it."""
    previous_stop: tuple[int, list[str]] | None
    """The last model version and its predictions on the stop set."""
    featurizer: dict | None = None
    """How a text pool's rows were made from text; None for a pool of feature vectors."""
    chunk_rows: int = ROWS_PER_CHUNK
    """Rows per stored feature chunk (storage.features)."""
    stored_sparse: bool = False
    """Whether the rows are stored sparse (a text pool): they are read as a CSR matrix."""

    @property
    def labeled(self) -> Labeled:
        return Labeled(
            rows=self.labeled_rows,
            labels=self.label_texts,
            eval_rows=self.eval_rows,
            eval_labels=self.eval_texts,
            eval_source=self.eval_source,
        )


@dataclass(frozen=True)
class Published:
    """What a refresh computed, ready to store."""

    version: int
    labels_version: int
    model_version: int | None
    model_classes: list[str]
    model_blob: bytes | None
    proba: np.ndarray | None
    n_ranked: int
    rankings: dict[str, tuple[np.ndarray, np.ndarray]]
    finished_at: float
    duration_s: float
    cold_start: bool
    review: Review | None = None
    """The model's history entry and stop recommendation; None in cold start."""


def _sorted_labels(raw: dict) -> tuple[np.ndarray, list[str]]:
    """A row -> label hash as rows in ascending order and their labels."""
    rows = np.fromiter((int(r) for r in raw.keys()), dtype=np.int64, count=len(raw))
    texts = [text(v) for v in raw.values()]
    order = np.argsort(rows)
    return rows[order], [texts[i] for i in order]


class RefreshStore:
    def __init__(self, redis: Redis):
        self.redis = redis
        self.scripts = Scripts.register(redis)

    def claim(self, pool_id: str, job_id: str, ttl_ms: int) -> tuple[str, Snapshot | None]:
        """Marks the job running and reads the pool in one transaction.

        Returns ('ok', snapshot); ('busy', None) while another refresh of the pool runs; ('covered',
        None) when a newer queued job will do the work; or ('gone', None) when the pool was deleted.
        """
        keys = PoolKeys(pool_id)
        pipe = self.redis.pipeline(transaction=True)
        self.scripts.claim(keys=[keys.meta, keys.pending, keys.running], args=[job_id, ttl_ms], client=pipe)
        pipe.hgetall(keys.meta)
        pipe.hgetall(keys.labels)
        pipe.hgetall(keys.eval)
        pipe.hvals(keys.history)
        pipe.get(keys.stop_set)
        pipe.get(keys.stop_labels)
        claimed, meta, labels, evals, history, stop_set, stop_labels = pipe.execute()
        claimed = text(claimed)
        if claimed != "ok" or not meta:
            return ("gone" if not meta else claimed), None
        meta = {text(k): text(v) for k, v in meta.items()}
        rows, texts = _sorted_labels(labels)
        eval_rows, eval_texts = _sorted_labels(evals)
        n_audit_eval = int(meta.get("n_audit_eval") or 0)
        previous = json.loads(stop_labels) if stop_labels else None
        return "ok", Snapshot(
            pool_id=pool_id,
            version=int(meta["version"]),
            labels_version=int(meta["labels_version"]),
            n_items=int(meta["n_items"]),
            dim=int(meta["dim"] or 0),
            model_spec=json.loads(meta["model"]),
            seed=int(meta["seed"]),
            strategies=[meta["strategy"], *filter(None, meta.get("wanted", "").split(","))],
            model_version=int(meta["model_version"]) if meta.get("model_version") else None,
            ranked_version=int(meta["ranked_version"]) if meta.get("ranked_version") else None,
            labeled_rows=rows,
            label_texts=texts,
            eval_rows=eval_rows,
            eval_texts=eval_texts,
            eval_source=evaluation.AUDIT if len(eval_rows) and n_audit_eval >= len(eval_rows) else evaluation.EVAL,
            policy=StoppingPolicy.from_spec(json.loads(meta["stopping"]) if meta.get("stopping") else None),
            history=sorted((json.loads(e) for e in history), key=lambda e: e["model_version"]),
            stop_rows=None if stop_set is None else np.frombuffer(stop_set, dtype="<u4").astype(np.int64),
            previous_stop=(previous["model_version"], previous["labels"]) if previous else None,
            featurizer=json.loads(meta["featurizer"]) if meta.get("featurizer") else None,
            chunk_rows=stored_chunk_rows(meta.get("chunk_rows"), int(meta["n_items"]), int(meta["dim"] or 1)),
            stored_sparse=meta.get("layout") == SPARSE,
        )

    def published_version(self, pool_id: str) -> int | None:
        """The version of the pool's published ranking (None before the first); NotFound for a pool that
        does not exist."""
        strategy, ranked = self.redis.hmget(PoolKeys(pool_id).meta, ["strategy", "ranked_version"])
        if strategy is None:
            raise pool_not_found(pool_id)
        return int_or_none(ranked)

    def current_ranking(self, pool_id: str) -> int | None:
        """The published ranking's version when it is of the pool's current version (no refresh is owed);
        None while a refresh is owed."""
        version, ranked = self.redis.hmget(PoolKeys(pool_id).meta, ["version", "ranked_version"])
        return int(ranked) if ranked is not None and ranked == version else None

    def recover(self, pool_id: str, job_id: str, pending_ttl_ms: int) -> bool:
        """Marks `job_id` pending if the pool's refresh was lost; True when the caller must enqueue it."""
        keys = PoolKeys(pool_id)
        return bool(self.scripts.recover(keys=[keys.meta, keys.pending, keys.running], args=[job_id, pending_ttl_ms]))

    def queued_job(self, pool_id: str) -> str | None:
        """The pool's pending job while no refresh of the pool runs; None otherwise."""
        keys = PoolKeys(pool_id)
        pending, running = self.redis.mget(keys.pending, keys.running)
        return text(pending) if pending and not running else None

    def recover_lost(
        self, pool_id: str, lost_id: str, job_id: str, pending_ttl_ms: int, grace_ms: int, waiting: bool
    ) -> bool:
        """Replaces the pool's pending job `lost_id` by `job_id` once two looks `grace_ms` apart found it
        neither waiting in a queue nor running; True when the caller must enqueue `job_id`."""
        keys = PoolKeys(pool_id)
        return bool(
            self.scripts.recover_lost(
                keys=[keys.pending, keys.running, keys.lost],
                args=[lost_id, job_id, pending_ttl_ms, grace_ms, "1" if waiting else ""],
            )
        )

    def defer(self, pool_id: str, job_id: str, new_job_id: str, pending_ttl_ms: int) -> bool:
        """Passes a busy pool's pending mark from `job_id` to `new_job_id`; True when the caller must
        enqueue `new_job_id`."""
        keys = PoolKeys(pool_id)
        return bool(self.scripts.defer(keys=[keys.pending, keys.running], args=[job_id, new_job_id, pending_ttl_ms]))

    def pool_ids(self):
        return (text(raw) for raw in self.redis.sscan_iter(POOL_INDEX, count=500))

    def beat(self, pool_id: str, job_id: str, ttl_ms: int) -> bool:
        """Extends the job's running mark; False once the mark is no longer this job's."""
        return bool(self.scripts.heartbeat(keys=[PoolKeys(pool_id).running], args=[job_id, ttl_ms]))

    def release(self, pool_id: str, job_id: str) -> None:
        """Clears the job's running mark when it had nothing to do."""
        self.scripts.finish(keys=[PoolKeys(pool_id).meta, PoolKeys(pool_id).running], args=[job_id, ""])

    def model_blob(self, pool_id: str) -> bytes | None:
        return self.redis.get(PoolKeys(pool_id).model)

    def publish(self, pool_id: str, job_id: str, result: Published) -> str:
        """Stores the result unless a newer one is there: 'ok', 'stale' or 'gone'."""
        keys = PoolKeys(pool_id)
        blobs = []
        for strategy in ALL_STRATEGIES:
            if strategy not in result.rankings:
                blobs += ["", ""]  # not ranked for this pool: the script deletes its keys
                continue
            order, scores = result.rankings[strategy]
            # Scores are kept by row, so that an item handed back can be ranked without its position.
            by_row = np.zeros(int(order.max()) + 1 if len(order) else 0, dtype="<f8")
            by_row[order] = scores
            blobs += [order.astype("<u4").tobytes(), by_row.tobytes()]
        review = result.review
        reply = self.scripts.publish(
            keys=[
                keys.meta,
                keys.model,
                keys.proba,
                keys.running,
                keys.cursor,
                keys.returned,
                keys.history,
                keys.stop_set,
                keys.stop_labels,
                *keys.ranking_keys(),
            ],
            args=[
                result.version,
                result.labels_version,
                "" if result.model_version is None else result.model_version,
                json.dumps(result.model_classes),
                len(result.model_classes),
                result.model_blob or b"",
                b"" if result.proba is None else result.proba.astype("<f4").tobytes(),
                result.n_ranked,
                job_id,
                repr(result.finished_at),
                repr(result.duration_s),
                "1" if result.cold_start else "0",
                ",".join(result.rankings),
                json.dumps(review.entry) if review else "",
                json.dumps(review.model_stop) if review else "",
                review.stop_rows.astype("<u4").tobytes() if review else b"",
                json.dumps({"model_version": result.model_version, "labels": review.stop_labels}) if review else "",
                json.dumps(review.entry.get("estimate")) if review else "",
                *blobs,
            ],
        )
        return text(reply)

    def record_failure(self, pool_id: str, job_id: str, message: str) -> None:
        keys = PoolKeys(pool_id)
        self.scripts.finish(keys=[keys.meta, keys.running], args=[job_id, message[:2000]])
