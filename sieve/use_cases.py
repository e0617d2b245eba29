"""The application service behind the HTTP API: each use case is one method over storage and the queue."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from redis import Redis

from sieve.core import labels as label_values
from sieve.core.errors import Conflict, InvalidInput, Pending
from sieve.core.estimators import normalize_model_spec
from sieve.core.fitting import predict_proba
from sieve.core.selection import DEFAULT_STRATEGY
from sieve.core.stopping import StoppingPolicy
from sieve.core.text import featurize, normalize_featurizer
from sieve.job_queue import enqueue_refresh, refresh_queue
from sieve.limits import MAX_LIST_POOLS
from sieve.settings import Settings
from sieve.storage import tenant_index
from sieve.storage.features import SPARSE, read_selected_rows, read_selected_sparse_rows, stored_chunk_rows
from sieve.storage.keys import PoolKeys
from sieve.storage.models import load_model
from sieve.storage.pool_store import Change, Idempotency, PoolConfig, PoolStore
from sieve.storage.rankings import Ranking, read_top
from sieve.storage.replies import pool_not_found
from sieve.waiting import WaitSlots

POLL_SECONDS = 0.02
"""How often a waiting query looks for a fresher ranking."""


def stopping_policy(spec: dict | None) -> StoppingPolicy:
    """The policy of a pool's `stopping` spec; the schema checked each field, this checks them together."""
    try:
        return StoppingPolicy.from_spec(spec)
    except ValueError as error:
        raise InvalidInput(str(error), field="stopping") from None


@dataclass(frozen=True)
class Prediction:
    model_version: int
    classes: list
    proba: np.ndarray


class Pools:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.store = PoolStore(redis, pending_ttl_ms=settings.pending_ttl_ms)
        self.queue = refresh_queue(redis, settings)
        self.wait_slots = WaitSlots(settings.max_waiting_queries)
        self._tenants_indexed = False

    def _enqueue(self, pool_id: str, job_id: str | None) -> None:
        if job_id:
            enqueue_refresh(self.queue, pool_id, job_id, self.settings)

    def _after(self, pool_id: str, change: Change) -> Change:
        self._enqueue(pool_id, change.job_id)
        return change

    def create(
        self,
        name,
        items,
        label_ids,
        labels,
        *,
        classes=None,
        model=None,
        strategy=None,
        random_state=None,
        idem: Idempotency | None = None,
        tenant: str | None = None,
        featurizer: dict | None = None,
        stopping: dict | None = None,
        splits: list[str] | None = None,
    ) -> str:
        ids = items.ids if items is not None else []
        text_pool = featurizer is not None or (items is not None and items.texts is not None)
        featurizer = normalize_featurizer(featurizer) if text_pool else None
        features = self._rows(featurizer, items) if items is not None else None
        known = set(ids)
        for i, item_id in enumerate(label_ids):
            if item_id not in known:
                raise InvalidInput(f"id {item_id!r} is not among this request's items", field=f"labels[{i}].id")
        if classes is not None:
            label_values.label_kind(classes, field="classes")
            label_values.check_allowed(labels, classes)
        model = normalize_model_spec(model)
        if featurizer is not None and model.get("standardize"):
            # Standardizing centres every column, which would make a text pool's sparse rows dense.
            raise InvalidInput(
                "a text pool's rows are l2-normalized already, and standardizing would make them "
                "dense: leave standardize out",
                field="model.standardize",
            )
        config = PoolConfig(
            name=name,
            model=model,
            strategy=strategy or DEFAULT_STRATEGY,
            random_state=random_state,
            classes=classes,
            tenant=tenant,
            featurizer=featurizer,
            stopping=stopping_policy(stopping),
        )
        self._index_tenants()
        pool_id, job_id = self.store.create(
            config, ids, features, label_ids, labels, idem, splits=splits, max_pools=self.settings.max_pools_per_tenant
        )
        self._enqueue(pool_id, job_id)
        return pool_id

    @staticmethod
    def _rows(featurizer: dict | None, items):
        """The feature rows of a batch of items: featurized text in a text pool (sparse rows, as large as the
        text), features elsewhere."""
        if featurizer is None:
            if items.texts is not None:
                raise InvalidInput(
                    "this pool holds feature vectors, not text; create a pool with a featurizer for text",
                    field="items[0].text",
                )
            return items.features
        if items.texts is None:
            raise InvalidInput("this is a text pool: send items with text, not features", field="items[0].features")
        return featurize(items.texts, featurizer)

    def add_items(self, pool_id: str, items, idem: Idempotency | None = None) -> Change:
        features = self._rows(self.store.featurizer(pool_id), items)
        return self._after(pool_id, self.store.add_items(pool_id, items.ids, features, idem=idem))

    def teach(
        self,
        pool_id: str,
        ids,
        labels,
        idem: Idempotency | None = None,
        source: str = "api",
        splits: list[str] | None = None,
    ) -> Change:
        return self._after(pool_id, self.store.teach(pool_id, ids, labels, source=source, idem=idem, splits=splits))

    def unlabel(self, pool_id: str, ids: list[str], source: str = "api") -> tuple[int, Change]:
        removed, change = self.store.unlabel(pool_id, ids, source)
        return removed, self._after(pool_id, change)

    def status(self, pool_id: str) -> dict:
        return self.store.status(pool_id)

    def history(self, pool_id: str) -> dict:
        return self.store.history(pool_id)

    def set_stopping(self, pool_id: str, stopping: dict | None) -> dict:
        """Replaces the pool's stopping policy as a whole (what the spec leaves out takes its default); the
        status, which reflects it already."""
        self._enqueue(pool_id, self.store.set_stopping(pool_id, stopping_policy(stopping)))
        return self.status(pool_id)

    def list(self, tenant: str | None = None, after: str = "", limit: int = MAX_LIST_POOLS) -> dict:
        """A page of the tenant's pools in id order (no tenant, as when keys are off: the pools made without
        one), and the cursor of the next page; reads only those pools."""
        self._index_tenants()
        ids, cursor = self.store.list_page(tenant or "", after, limit)
        return {"pools": self.store.statuses(ids), "next": cursor}

    def _index_tenants(self) -> None:
        # Once per process: pools made before tenants had indexes get into theirs before any list or cap.
        if not self._tenants_indexed:
            tenant_index.backfill(self.redis, self.store.scripts)
            self._tenants_indexed = True

    def delete(self, pool_id: str) -> None:
        self.store.delete(pool_id)

    def query(
        self,
        pool_id: str,
        k: int,
        strategy: str | None,
        wait: float,
        lease_seconds: float | None = None,
        annotator: str = "",
        tenant: str | None = None,
    ) -> Ranking:
        """The k most informative unlabeled items, leased to the caller; waits up to `wait` s for labels
        to be reflected in the ranking, unless the tenant has as many queries waiting in this process as
        it may."""
        lease_ms = round(1000 * (self.settings.lease_seconds if lease_seconds is None else lease_seconds))
        started = time.monotonic()
        if wait > 0:
            with self.wait_slots.take(tenant) as may_wait:
                if may_wait:
                    self._await(pool_id, strategy, started + wait, started + self.settings.first_ranking_wait)
        ranking = read_top(self.redis, self.store.scripts, pool_id, k, strategy, lease_ms, annotator)
        if not ranking.ready:
            # A brand-new pool's first ranking, or one for a strategy the pool has not used before, is a
            # matter of moments: wait for it rather than fail (without a free slot, only ask for it).
            with self.wait_slots.take(tenant) as may_wait:
                ready_by = started + (self.settings.first_ranking_wait if may_wait else 0)
                self._await(pool_id, strategy, started, ready_by)
            ranking = read_top(self.redis, self.store.scripts, pool_id, k, strategy, lease_ms, annotator)
        if not ranking.ready:
            raise Pending(
                f"the pool's ranking for {ranking.strategy} is being computed; poll the job or ask again shortly",
                self.store.pending_job(pool_id),
                ranking.strategy,
            )
        return ranking

    def _await(self, pool_id: str, strategy: str | None, fresh_by: float, ready_by: float) -> None:
        """Polls without leasing until the ranking reflects every label, or the deadlines pass. A
        strategy the pool has no ranking for is asked for first."""
        asked = False
        while True:
            ranking = read_top(self.redis, self.store.scripts, pool_id, 1, strategy)
            if ranking.unranked and not asked:
                self._enqueue(pool_id, self.store.want(pool_id, ranking.strategy))
                asked = True
            now = time.monotonic()
            if ranking.fresh or (ranking.ready and now >= fresh_by) or now >= max(fresh_by, ready_by):
                return
            time.sleep(POLL_SECONDS)

    def release(self, pool_id: str, ids: list[str], annotator: str = "") -> int:
        return self.store.release(pool_id, ids, annotator)

    def predict(
        self,
        pool_id: str,
        features: np.ndarray | None = None,
        ids: list[str] | None = None,
        texts: list[str] | None = None,
    ) -> Prediction:
        keys = PoolKeys(pool_id)
        # The model and its version are read together: a refresh may replace both at any moment.
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(keys.meta, ["dim", "model_version", "featurizer", "n_items", "chunk_rows", "layout"])
        pipe.get(keys.model)
        (dim, model_version, featurizer, n_items, chunk_rows, layout), blob = pipe.execute()
        if dim is None:
            raise pool_not_found(pool_id)
        if texts is not None:
            if not featurizer:
                raise InvalidInput("this pool holds feature vectors: send features, not texts", field="texts")
            features = featurize(texts, json.loads(featurizer))
        if not model_version or blob is None:
            raise Conflict("this pool has no model yet: label items of at least two classes first", field="pool_id")
        dim, model_version = int(dim), int(model_version)
        if ids is not None:
            read = read_selected_sparse_rows if layout == SPARSE.encode() else read_selected_rows
            features = read(
                self.redis,
                keys,
                self.store.rows_of(pool_id, ids),
                dim,
                stored_chunk_rows(chunk_rows, int(n_items), dim),
            )
        elif features.shape[1] != dim:
            raise InvalidInput(f"features must have this pool's dimension {dim}", field="features")
        model = load_model(blob, self.settings.require_secret_key(), pool_id, model_version)
        return Prediction(
            model_version=model_version,
            classes=label_values.decode_all(model.classes_),
            # A text pool stored before rows were kept sparse has a model fitted on dense rows.
            proba=predict_proba(model, features, dense_blocks=layout != SPARSE.encode()),
        )

    def query_answer(
        self,
        pool_id: str,
        k: int,
        strategy: str | None,
        wait: float,
        lease_seconds: float | None = None,
        annotator: str = "",
        tenant: str | None = None,
    ) -> dict:
        ranking = self.query(pool_id, k, strategy, wait, lease_seconds, annotator, tenant)
        classes = ranking.model_classes
        names = [str(c) for c in classes]
        scores = ranking.scores.tolist()
        if ranking.probabilities is None:
            items = [
                {"id": i, "score": s, "predicted_label": None, "probabilities": None}
                for i, s in zip(ranking.ids, scores)
            ]
        else:
            best = ranking.probabilities.argmax(axis=1).tolist()
            items = [
                {"id": i, "score": s, "predicted_label": classes[b], "probabilities": dict(zip(names, p))}
                for i, s, b, p in zip(ranking.ids, scores, best, ranking.probabilities.tolist())
            ]
        return {
            "pool_id": pool_id,
            "strategy": ranking.strategy,
            "model_version": ranking.model_version,
            "labels_version": ranking.labels_version,
            "ranked_labels_version": ranking.ranked_labels_version,
            "cold_start": ranking.cold_start,
            "stop": ranking.stop,
            "lease": None
            if ranking.lease_expires_ms is None
            else {"expires_at": ranking.lease_expires_ms / 1000, "annotator": annotator or None},
            "items": items,
        }

    def predict_answer(self, pool_id: str, features=None, ids=None, texts=None) -> dict:
        prediction = self.predict(pool_id, features=features, ids=ids, texts=texts)
        classes = prediction.classes
        best = prediction.proba.argmax(axis=1)
        asked = ids if ids is not None else [None] * len(best)
        return {
            "pool_id": pool_id,
            "model_version": prediction.model_version,
            "predictions": [
                {
                    "id": i,
                    "predicted_label": classes[b],
                    "probabilities": {str(c): float(p) for c, p in zip(classes, row)},
                }
                for i, b, row in zip(asked, best, prediction.proba)
            ],
        }
