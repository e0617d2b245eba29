"""The application service behind the HTTP API: each use case is one method over storage and the queue."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

from sieve.core import labels as label_values
from sieve.core.errors import Conflict, InvalidInput, NotFound, Pending
from sieve.core.estimators import normalize_model_spec
from sieve.core.fitting import predict_proba
from sieve.core.items import ItemBatch
from sieve.core.selection import DEFAULT_STRATEGY
from sieve.core.stopping import StoppingPolicy
from sieve.core.text import featurize, normalize_featurizer
from sieve.job_queue import enqueue_refresh, fetch_job, refresh_queue, workers_alive
from sieve.limits import MAX_LIST_POOLS
from sieve.settings import Settings
from sieve.storage.job_ids import pool_of_job
from sieve.storage.models import load_model
from sieve.storage.pool_store import Change, Idempotency, NewLabels, PoolConfig, PoolSizes, PoolStore
from sieve.storage.rankings import FullRanking, Ranking
from sieve.storage.served import ServedModels
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
class PoolSpec:
    """What a client chooses for a new pool; each field may be left out. Pools.create checks them."""

    name: str | None = None
    classes: list | None = None
    model: dict | None = None
    strategy: str | None = None
    random_state: int | None = None
    featurizer: dict | None = None
    """Makes a text pool: how its items' text becomes feature rows."""
    stopping: dict | None = None


@dataclass(frozen=True)
class Labels:
    """The labels of one call: item ids, a label each, and each one's split (train or eval)."""

    ids: list[str] = field(default_factory=list)
    labels: list = field(default_factory=list)
    splits: list[str] | None = None
    """None: every label is for training."""


def _check_among(ids: list[str], labels: Labels) -> None:
    """Labels sent with items are labels of those items."""
    known = set(ids)
    for i, item_id in enumerate(labels.ids):
        if item_id not in known:
            raise InvalidInput(f"id {item_id!r} is not among this request's items", field=f"labels[{i}].id")


@dataclass(frozen=True)
class Prediction:
    model_version: int
    classes: list
    proba: np.ndarray


class Pools:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.store = PoolStore(redis, pending_ttl_ms=settings.pending_ttl_ms, max_pool_values=settings.max_pool_values)
        self.models = ServedModels(redis)
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
        spec: PoolSpec,
        items: ItemBatch | None = None,
        labels: Labels | None = None,
        *,
        idem: Idempotency | None = None,
        tenant: str | None = None,
    ) -> str:
        labels = labels or Labels()
        featurizer, classes = spec.featurizer, spec.classes
        ids = items.ids if items is not None else []
        text_pool = featurizer is not None or (items is not None and items.texts is not None)
        featurizer = normalize_featurizer(featurizer) if text_pool else None
        features = self._rows(featurizer, items) if items is not None else None
        _check_among(ids, labels)
        if classes is not None:
            label_values.label_kind(classes, field="classes")
            label_values.check_allowed(labels.labels, classes)
        model = normalize_model_spec(spec.model)
        if featurizer is not None and model.get("standardize"):
            # Standardizing centres every column, which would make a text pool's sparse rows dense.
            raise InvalidInput(
                "a text pool's rows are l2-normalized already, and standardizing would make them "
                "dense: leave standardize out",
                field="model.standardize",
            )
        config = PoolConfig(
            name=spec.name,
            model=model,
            strategy=spec.strategy or DEFAULT_STRATEGY,
            random_state=spec.random_state,
            classes=classes,
            tenant=tenant,
            featurizer=featurizer,
            stopping=stopping_policy(spec.stopping),
        )
        self._index_tenants()
        pool_id, job_id = self.store.create(
            config,
            ids,
            features,
            labels.ids,
            labels.labels,
            idem,
            splits=labels.splits,
            max_pools=self.settings.max_pools_per_tenant,
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

    def add_items(self, pool_id: str, items, idem: Idempotency | None = None, labels: Labels | None = None) -> Change:
        """Adds items, and teaches the labels of some of them in the same step (all or nothing)."""
        new_labels = None
        if labels is not None and labels.ids:
            _check_among(items.ids, labels)
            new_labels = NewLabels(labels.ids, labels.labels, labels.splits or ["train"] * len(labels.ids))
        features = self._rows(self.store.featurizer(pool_id), items)
        return self._after(pool_id, self.store.add_items(pool_id, items.ids, features, idem=idem, labels=new_labels))

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

    def present_ids(self, pool_id: str, ids: list[str]) -> list[str]:
        return self.store.present_ids(pool_id, ids)

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
            self.store.index_tenants()
            self._tenants_indexed = True

    def delete(self, pool_id: str) -> None:
        self.store.delete(pool_id)

    def exists(self, pool_id: str) -> bool:
        return self.store.exists(pool_id)

    def featurizer(self, pool_id: str) -> dict | None:
        """A text pool's featurizer; None for a pool of feature vectors."""
        return self.store.featurizer(pool_id)

    def widen_classes(self, pool_id: str, classes: list) -> None:
        """Lets the pool take these classes too (its closed list grows, never shrinks)."""
        self.store.widen_classes(pool_id, classes)

    def known_ids(self, pool_id: str, ids: list[str]) -> list[bool]:
        """For each id, whether the pool holds it."""
        return self.store.known_ids(pool_id, ids)

    def labels_of(self, pool_id: str, ids: list[str]) -> dict[str, str | None]:
        """The label of each id the pool holds (None: unlabeled); ids it does not hold are left out."""
        return self.store.labels_of(pool_id, ids)

    def item_ids(self, pool_id: str) -> list[str]:
        return self.store.item_ids(pool_id)

    def sizes(self, pool_id: str) -> PoolSizes:
        """The pool's item count, dimension and last ranked version, without checking that it exists."""
        return self.store.sizes(pool_id)

    def full_ranking(self, pool_id: str) -> FullRanking:
        """Every still unlabeled item of the pool's published ranking, most informative first."""
        return self.store.full_ranking(pool_id)

    def owner(self, pool_id: str) -> str | None:
        """The pool's tenant ("" for none); None for a pool that does not exist."""
        return self.store.owner(pool_id)

    def job(self, job_id: str) -> Job:
        """A job of Sieve's as RQ keeps it; NotFound once it is gone, or its pool is."""
        missing = NotFound(f"job {job_id} does not exist (finished jobs are kept for an hour)", field="job_id")
        pool_id = pool_of_job(job_id)
        # A deleted pool's jobs are gone with it: its id is never given again, so nothing is served from them.
        if pool_id is None or not self.store.exists(pool_id):
            raise missing
        found = fetch_job(self.redis, job_id)
        if found is None:
            raise missing
        return found

    def workers_alive(self) -> int | None:
        """How many workers are alive; None when Redis does not answer."""
        try:
            self.redis.ping()
            return workers_alive(self.redis)
        except RedisError:
            return None

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
        ranking = self.store.query(pool_id, k, strategy, lease_ms, annotator)
        if not ranking.ready:
            # A brand-new pool's first ranking, or one for a strategy the pool has not used before, is a
            # matter of moments: wait for it rather than fail (without a free slot, only ask for it).
            with self.wait_slots.take(tenant) as may_wait:
                ready_by = started + (self.settings.first_ranking_wait if may_wait else 0)
                self._await(pool_id, strategy, started, ready_by)
            ranking = self.store.query(pool_id, k, strategy, lease_ms, annotator)
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
            ranking = self.store.query(pool_id, 1, strategy, audit=False)
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
        served = self.models.current(pool_id)
        if texts is not None:
            if served.featurizer is None:
                raise InvalidInput("this pool holds feature vectors: send features, not texts", field="texts")
            features = featurize(texts, served.featurizer)
        if served.model_version is None or served.blob is None:
            raise Conflict("this pool has no model yet: label items of at least two classes first", field="pool_id")
        if ids is not None:
            features = self.models.rows(served, self.store.rows_of(pool_id, ids))
        elif features.shape[1] != served.dim:
            raise InvalidInput(f"features must have this pool's dimension {served.dim}", field="features")
        model = load_model(served.blob, self.settings.require_secret_key(), pool_id, served.model_version)
        return Prediction(
            model_version=served.model_version,
            classes=label_values.decode_all(model.classes_),
            # A text pool stored before rows were kept sparse has a model fitted on dense rows.
            proba=predict_proba(model, features, dense_blocks=not served.sparse),
        )
