"""Pools in Redis: create, add items, teach, read status, delete; every change atomic and versioned."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import numpy as np
from redis import Redis
from redis.exceptions import WatchError
from scipy import sparse

from sieve.core import labels as label_values
from sieve.core.errors import Conflict, InvalidInput
from sieve.core.history import model_stop
from sieve.core.stopping import StoppingPolicy
from sieve.limits import (
    DEFAULT_MAX_POOL_VALUES,
    MAX_CLASSES,
    MAX_ITEMS_PER_CALL,
    MAX_POOL_ITEMS,
    MAX_POOL_NONZEROS,
    REDIS_MAX_STRING_BYTES,
)
from sieve.storage import job_ids, tenant_index
from sieve.storage.features import (
    SPARSE,
    chunk_count,
    chunk_payloads,
    rows_per_chunk,
    sparse_payloads,
    stored_chunk_rows,
)
from sieve.storage.keys import POOL_INDEX, PoolKeys, TenantKeys
from sieve.storage.rankings import FullRanking, Ranking, read_all, read_top
from sieve.storage.replies import decode_hash, int_or_none, pool_not_found, stop_answer, text
from sieve.storage.scripts import Scripts


@dataclass(frozen=True)
class PoolConfig:
    """What a client chooses when creating a pool; validated before it gets here."""

    name: str | None
    model: dict
    strategy: str
    random_state: int | None
    classes: list | None
    tenant: str | None = None
    stopping: StoppingPolicy = StoppingPolicy()
    featurizer: dict | None = None
    """Set for a text pool: how its items' text becomes their feature rows."""


@dataclass(frozen=True)
class Change:
    """The outcome of a write: the versions it produced and the refresh job to enqueue, if any."""

    version: int
    labels_version: int
    job_id: str | None
    n_items: int | None = None


@dataclass(frozen=True)
class PoolSizes:
    """A pool's size as its meta has it: all zero and None for a pool that does not exist."""

    n_items: int
    dim: int | None
    """None until the pool's first items (a Label Studio vector pool starts without)."""
    ranked_version: int | None
    """The version of its published rankings; None before the first."""


@dataclass(frozen=True)
class NewLabels:
    """Labels of items added in the same call: ids, a label each, and each one's split (train or eval)."""

    ids: list[str]
    labels: list
    splits: list[str]

    @property
    def kind(self) -> str:
        return label_values.label_kind(self.labels)


@dataclass(frozen=True)
class Idempotency:
    """A client's Idempotency-Key and a digest of the request it came with."""

    key: str
    body_hash: str


IDEMPOTENCY_TTL_SECONDS = 24 * 3600
"""How long a replay with the same Idempotency-Key returns the first answer."""


def _key_reused() -> InvalidInput:
    return InvalidInput(
        "this Idempotency-Key was used with a different request; use a new key", field="Idempotency-Key"
    )


def _replayed(record: bytes, idem: Idempotency) -> Change:
    stored = json.loads(record)
    if stored["hash"] != idem.body_hash:
        raise _key_reused()
    return Change(
        version=stored["version"],
        labels_version=stored.get("labels_version", 0),
        job_id=stored["job_id"] or None,
        n_items=stored.get("n_items"),
    )


class PoolStore:
    """Reads and writes pools; knows the key layout and the scripts, nothing about HTTP or RQ."""

    def __init__(self, redis: Redis, pending_ttl_ms: int, max_pool_values: int = DEFAULT_MAX_POOL_VALUES):
        self.redis = redis
        # Most items x dimension one pool of vectors may hold (SIEVE_MAX_POOL_VALUES).
        self.max_pool_values = max_pool_values
        self.scripts = Scripts.register(redis)
        # A queued job's mark outlives a crashed enqueue by at most this long.
        self.pending_ttl_ms = pending_ttl_ms

    # -- writes ---------------------------------------------------------------------------------

    def create(
        self,
        config: PoolConfig,
        ids: list[str],
        features: np.ndarray | None,
        label_ids: list[str],
        labels: list,
        idem: Idempotency | None = None,
        splits: list[str] | None = None,
        max_pools: int | None = None,
    ) -> tuple[str, str | None]:
        """Creates the pool under a new random id; its id and the refresh job to enqueue. Under an
        Idempotency-Key, a replay returns the pool the first call made while it exists (and no job).
        With `max_pools`, a tenant that holds that many pools gets a Conflict and nothing is written."""
        tenant = TenantKeys(config.tenant or "")
        seed = config.random_state if config.random_state is not None else secrets.randbits(32)
        kind = label_values.label_kind(labels)
        # The scripts of the transaction below would refuse items or labels only after its meta was written.
        if ids:
            self._check_values(0, features, sparse_layout=bool(config.featurizer))
        training = {
            label_values.encode(x) for x, split in zip(labels, splits or ["train"] * len(labels)) if split != "eval"
        }
        if len(training) > MAX_CLASSES:
            raise InvalidInput(f"a pool has at most {MAX_CLASSES} classes", field="labels")
        for _ in range(100):
            # A fresh id per attempt: the items and labels scripts below find no pool unless this attempt
            # made it, so an attempt that is refused writes nothing anywhere.
            pool_id = secrets.token_hex(8)
            keys = PoolKeys(pool_id)
            recorded = self._recorded_pool(tenant, idem)
            meta = _meta(config, features, seed)
            pipe = self.redis.pipeline(transaction=True)
            self.scripts.create_pool(
                keys=[
                    keys.meta,
                    POOL_INDEX,
                    tenant.pools,
                    tenant.creates,
                    tenant.creates_at,
                    PoolKeys(recorded or pool_id).meta,
                ],
                args=[
                    pool_id,
                    idem.key if idem else "",
                    idem.body_hash if idem else "",
                    recorded,
                    "" if max_pools is None else max_pools,
                    IDEMPOTENCY_TTL_SECONDS,
                    *(x for pair in meta.items() for x in pair),
                ],
                client=pipe,
            )
            if ids:
                self._add_items_call(
                    keys, 0, ids, features, rows_per_chunk(features.shape[1]), bool(config.featurizer), client=pipe
                )
            if label_ids:
                self._teach_call(keys, label_ids, labels, kind, "create", client=pipe, first_labels=True, splits=splits)
            created, *outcomes = pipe.execute()
            status = text(created[0])
            if status in ("retry", "exists"):
                continue
            if status == "reused":
                raise _key_reused()
            if status == "replay":
                return text(created[1]), None
            if status == "full":
                raise Conflict(
                    f"this tenant already has {text(created[1])} pools, the most "
                    f"SIEVE_MAX_POOLS_PER_TENANT allows; delete one first",
                    field="pools",
                )
            if any(text(outcome[0]) != "ok" for outcome in outcomes):
                raise RuntimeError(f"pool creation refused by Redis: {outcomes!r}")
            job_ids = ([self._items_change(outcomes[0]).job_id] if ids else []) + (
                [self._teach_change(outcomes[-1]).job_id] if label_ids else []
            )
            return pool_id, next((job_id for job_id in job_ids if job_id), None)
        raise RuntimeError("too many concurrent creations under one Idempotency-Key")

    def _recorded_pool(self, tenant: TenantKeys, idem: Idempotency | None) -> str:
        """The pool an Idempotency-Key's create made, as its record says now; '' when none."""
        if idem is None:
            return ""
        record = self.redis.hget(tenant.creates, idem.key)
        return json.loads(record)["pool"] if record else ""

    def add_items(
        self, pool_id: str, ids: list[str], features, idem: Idempotency | None = None, labels: NewLabels | None = None
    ) -> Change:
        """Appends items with their rows: an array, or a text pool's CSR matrix; with `labels` (of some of
        these items), teaches them in the same transaction, all or nothing."""
        keys = PoolKeys(pool_id)
        for _ in range(100):
            with self.redis.pipeline(transaction=True) as pipe:
                outcome, stored, sparse_layout = self._add_items_attempt(pipe, keys, ids, features, idem, labels)
            status = text(outcome[0])
            if status == "retry":
                continue
            if status == "replay":
                return _replayed(outcome[1], idem)
            if status == "gone":
                raise pool_not_found(pool_id)
            if status == "dim":
                raise InvalidInput(
                    f"features must have this pool's dimension {text(outcome[1])}", field="items[0].features"
                )
            if status == "full":
                raise InvalidInput(
                    f"a pool holds at most {MAX_POOL_ITEMS} items; this one has {text(outcome[1])}", field="items"
                )
            if status == "values":
                self._check_values(int(text(outcome[1])), stored, sparse_layout)
            if status == "chunk":
                raise InvalidInput(
                    "this pool's feature storage is full; put further items in a new pool", field="items"
                )
            if status == "dup":
                dups = [text(x) for x in outcome[1:]]
                raise Conflict(f"these ids are already in the pool: {dups}", field=f"items[{ids.index(dups[0])}].id")
            return self._items_change(outcome)
        raise RuntimeError("too many concurrent item additions to one pool")

    def teach(
        self,
        pool_id: str,
        ids: list[str],
        labels: list,
        source: str = "api",
        idem: Idempotency | None = None,
        splits: list[str] | None = None,
    ) -> Change:
        keys = PoolKeys(pool_id)
        kind = label_values.label_kind(labels)
        outcome = self._teach_call(keys, ids, labels, kind, source, idem=idem, splits=splits)
        status = text(outcome[0])
        if status == "replay":
            return _replayed(outcome[1], idem)
        if status == "gone":
            raise pool_not_found(pool_id)
        if status == "kind":
            raise _other_kind(text(outcome[1]))
        if status == "missing":
            raise _not_in_pool([text(x) for x in outcome[1:]], ids, "labels[{}].id")
        if status == "classes":
            raise InvalidInput(f"a pool has at most {MAX_CLASSES} classes", field="labels")
        if status == "not_allowed":
            index, classes = int(outcome[1]), label_values.decode_all(json.loads(outcome[2]))
            raise InvalidInput(
                f"label {labels[index]!r} is not one of the pool's classes {classes!r}", field=f"labels[{index}].label"
            )
        if status == "split":
            i = int(text(outcome[1]))
            raise Conflict(
                f"item {ids[i]!r} is already labeled in the other split; an item stays in the split "
                "it was first labeled in",
                field=f"labels[{i}].split",
            )
        return self._teach_change(outcome)

    def _add_items_attempt(self, pipe, keys: PoolKeys, ids, features, idem, labels: NewLabels | None):
        """One try of add_items: the script's answer ('retry' when the pool changed meanwhile), the rows as
        stored and whether the pool stores them sparse."""
        if labels:
            # Every check the teach script makes is made here first, on what it will read: a change of the
            # meta or the class counts in between makes the transaction fail, and the call retries.
            pipe.watch(keys.meta, keys.class_counts)
        reader = pipe if labels else self.redis
        n_items, chunk_rows, layout = reader.hmget(keys.meta, ["n_items", "chunk_rows", "layout"])
        if n_items is None:
            raise pool_not_found(keys.pool_id)
        if labels:
            self._check_new_labels(pipe, keys, labels)
        sparse_layout = text(layout or b"") == SPARSE
        if sparse.issparse(features) and not sparse_layout:
            # A text pool stored dense (before text pools were stored sparse) keeps its layout; the
            # dense rows of this call are bounded by the pool's limit before they are made.
            self._check_values(0, features, sparse_layout=False)
            features = features.toarray()
        chunk_rows = stored_chunk_rows(chunk_rows, int(n_items), features.shape[1])
        if not labels:
            outcome = self._add_items_call(keys, int(n_items), ids, features, chunk_rows, sparse_layout, idem=idem)
            return outcome, features, sparse_layout
        pipe.multi()
        self._add_items_call(keys, int(n_items), ids, features, chunk_rows, sparse_layout, idem=idem, client=pipe)
        # Taught only if the items were added: a refused or replayed addition leaves n_items as it was.
        guard = f"n={int(n_items) + len(ids)}"
        self._teach_call(
            keys, labels.ids, labels.labels, labels.kind, "api", client=pipe, splits=labels.splits, guard=guard
        )
        try:
            outcome, taught = pipe.execute()
        except WatchError:
            return [b"retry"], features, sparse_layout
        if text(outcome[0]) == "ok" and text(taught[0]) != "ok":
            raise RuntimeError(f"labels of added items refused by Redis: {taught!r}")
        return outcome, features, sparse_layout

    @staticmethod
    def _check_new_labels(pipe, keys: PoolKeys, labels: NewLabels) -> None:
        """What the teach script would refuse of labels of items being added: a label of the other kind, one
        outside the pool's classes, or classes past MAX_CLASSES."""
        stored_kind, classes = pipe.hmget(keys.meta, ["label_kind", "classes"])
        if stored_kind and text(stored_kind) not in ("", labels.kind):
            raise _other_kind(text(stored_kind))
        label_values.check_allowed(labels.labels, json.loads(classes) if classes else None)
        training = sorted({label_values.encode(x) for x, split in zip(labels.labels, labels.splits) if split != "eval"})
        known = pipe.hmget(keys.class_counts, training) if training else []
        if pipe.hlen(keys.class_counts) + sum(count is None for count in known) > MAX_CLASSES:
            raise InvalidInput(f"a pool has at most {MAX_CLASSES} classes", field="labels")

    def unlabel(self, pool_id: str, ids: list[str], source: str = "api") -> tuple[int, Change]:
        """Removes the labels of these items; how many had one, and the change (no job when none had)."""
        keys = PoolKeys(pool_id)
        outcome = self.scripts.unlabel(
            keys=[keys.meta, keys.rows, keys.labels, keys.labeled, keys.class_counts, keys.log, keys.pending],
            args=[len(ids), job_ids.refresh_prefix(keys.pool_id), self.pending_ttl_ms, source, *ids],
        )
        status = text(outcome[0])
        if status == "gone":
            raise pool_not_found(pool_id)
        if status == "missing":
            raise _not_in_pool([text(x) for x in outcome[1:]], ids, "ids[{}]")
        _, removed, labels_version, version, job_id = (text(x) for x in outcome)
        return int(removed), Change(version=int(version), labels_version=int(labels_version), job_id=job_id or None)

    def widen_classes(self, pool_id: str, classes: list) -> None:
        """Adds classes to a pool's closed list; classes already there, and labels given, stay valid."""
        keys = PoolKeys(pool_id)

        def widen(pipe):
            current = pipe.hget(keys.meta, "classes")
            if current is None:
                raise pool_not_found(pool_id)
            known = json.loads(current) if current else []
            wider = known + [c for c in classes if c not in known]
            pipe.multi()
            if wider != known:
                pipe.hset(keys.meta, mapping={"classes": json.dumps(wider), "allowed_labels": _allowed_labels(wider)})

        self.redis.transaction(widen, keys.meta)

    def set_stopping(self, pool_id: str, policy: StoppingPolicy) -> str | None:
        """Replaces the pool's stopping policy and the model rules' recommendation, recomputed from the
        stored history under it; the refresh job to enqueue, if one is needed."""
        keys = PoolKeys(pool_id)
        fields = _stopping_fields(policy)

        def replace(pipe):
            entries = [json.loads(e) for e in pipe.hvals(keys.history)]
            pipe.multi()
            self.scripts.set_stopping(
                keys=[keys.meta, keys.pending],
                args=[
                    fields["stopping"],
                    fields["budget"],
                    fields["enforce_budget"],
                    json.dumps(model_stop(policy, entries)),
                    job_ids.refresh_prefix(pool_id),
                    self.pending_ttl_ms,
                    fields["audit_rate"],
                ],
                client=pipe,
            )

        # WATCH on the history: a refresh publishing a model between the read and the write makes the
        # recommendation retry with that model's entry.
        (outcome,) = self.redis.transaction(replace, keys.history)
        if text(outcome[0]) == "gone":
            raise pool_not_found(pool_id)
        return text(outcome[1]) or None

    def release(self, pool_id: str, ids: list[str], annotator: str = "") -> int:
        """Ends the leases on these items (only `annotator`'s, when named); how many ended."""
        keys = PoolKeys(pool_id)
        outcome = self.scripts.release(
            keys=[keys.meta, keys.rows, keys.labeled, keys.leases, keys.lease_owners, keys.returned, keys.held],
            args=[annotator, *ids],
        )
        status = text(outcome[0])
        if status == "gone":
            raise pool_not_found(pool_id)
        if status == "missing":
            raise _not_in_pool([text(x) for x in outcome[1:]], ids, "ids[{}]")
        return int(outcome[1])

    def want(self, pool_id: str, strategy: str) -> str | None:
        """Has the pool rank `strategy` from now on; the refresh job to enqueue, if one is needed."""
        keys = PoolKeys(pool_id)
        outcome = self.scripts.want(
            keys=[keys.meta, keys.pending], args=[strategy, job_ids.refresh_prefix(pool_id), self.pending_ttl_ms]
        )
        if text(outcome[0]) == "gone":
            raise pool_not_found(pool_id)
        return text(outcome[1]) or None

    def pending_job(self, pool_id: str) -> str | None:
        """The id of the pool's queued refresh, or of the one running when none is queued."""
        keys = PoolKeys(pool_id)
        pending, running = self.redis.mget(keys.pending, keys.running)
        return text(pending or running) if (pending or running) else None

    def delete(self, pool_id: str) -> None:
        keys = PoolKeys(pool_id)

        def remove(pipe):
            n_items, tenant, dim, chunk_rows = pipe.hmget(keys.meta, ["n_items", "tenant", "dim", "chunk_rows"])
            if n_items is None:
                raise pool_not_found(pool_id)
            n_chunks = chunk_count(int(n_items), stored_chunk_rows(chunk_rows, int(n_items), int(dim or 1)))
            pipe.multi()
            pipe.delete(*keys.all_keys(n_chunks))
            pipe.srem(POOL_INDEX, pool_id)
            pipe.zrem(TenantKeys(text(tenant or b"")).pools, pool_id)

        # WATCH on meta: an item addition racing the delete retries it, so no chunk is left behind.
        self.redis.transaction(remove, keys.meta)

    def _check_values(self, stored: int, features, sparse_layout: bool) -> None:
        adding = _stored_values(features, sparse_layout)
        if sparse_layout and stored + adding > MAX_POOL_NONZEROS:
            raise InvalidInput(
                f"a text pool holds at most {MAX_POOL_NONZEROS} non-zero feature values (distinct terms "
                f"of its items); this one holds {stored} and these items add {adding}",
                field="items",
            )
        if not sparse_layout and stored + adding > self.max_pool_values:
            raise InvalidInput(
                f"a pool holds at most {self.max_pool_values} feature values (items x dimension, "
                f"SIEVE_MAX_POOL_VALUES); this one holds {stored} and these items add {adding}",
                field="items",
            )

    def _add_items_call(
        self,
        keys: PoolKeys,
        first_row: int,
        ids,
        features,
        chunk_rows: int,
        sparse_layout: bool,
        client=None,
        idem: Idempotency | None = None,
    ):
        if sparse_layout:
            parts = sparse_payloads(first_row, features, chunk_rows)
            chunk_keys = [key for c, *_ in parts for key in keys.sparse_chunk(c)]
            payloads = [data for _, *datas in parts for data in datas]
        else:
            parts = chunk_payloads(first_row, features, chunk_rows)
            chunk_keys, payloads = [keys.chunk(c) for c, _ in parts], [data for _, data in parts]
        return self.scripts.add_items(
            keys=[keys.meta, keys.ids, keys.rows, keys.pending, keys.idempotency, keys.idempotency_at, *chunk_keys],
            args=[
                first_row,
                features.shape[1],
                len(ids),
                MAX_POOL_ITEMS,
                job_ids.refresh_prefix(keys.pool_id),
                self.pending_ttl_ms,
                idem.key if idem else "",
                idem.body_hash if idem else "",
                IDEMPOTENCY_TTL_SECONDS,
                chunk_rows,
                REDIS_MAX_STRING_BYTES,
                _stored_values(features, sparse_layout),
                MAX_POOL_NONZEROS if sparse_layout else self.max_pool_values,
                json.dumps(list(ids), ensure_ascii=False, separators=(",", ":")),
                *payloads,
            ],
            client=client,
        )

    def _teach_call(
        self,
        keys: PoolKeys,
        ids,
        labels,
        kind,
        source,
        client=None,
        idem: Idempotency | None = None,
        first_labels: bool = False,
        splits: list[str] | None = None,
        guard: str = "",
    ):
        return self.scripts.teach(
            keys=[
                keys.meta,
                keys.rows,
                keys.labels,
                keys.labeled,
                keys.class_counts,
                keys.log,
                keys.pending,
                keys.leases,
                keys.lease_owners,
                keys.returned,
                keys.held,
                keys.idempotency,
                keys.idempotency_at,
                keys.eval,
                keys.audit,
            ],
            args=[
                len(ids),
                kind,
                job_ids.refresh_prefix(keys.pool_id),
                self.pending_ttl_ms,
                source,
                MAX_CLASSES,
                idem.key if idem else "",
                idem.body_hash if idem else "",
                IDEMPOTENCY_TTL_SECONDS,
                "1" if first_labels else guard,
                *ids,
                *(label_values.encode(x) for x in labels),
                *(SPLIT_CODES.get(split, "d") for split in (splits or [None] * len(ids))),
            ],
            client=client,
        )

    @staticmethod
    def _items_change(outcome) -> Change:
        """add_items answered: ok, version, job id, n_items."""
        _, version, job_id, n_items = (text(x) for x in outcome)
        return Change(version=int(version), labels_version=0, job_id=job_id or None, n_items=int(n_items))

    @staticmethod
    def _teach_change(outcome) -> Change:
        """teach answered: ok, labels_version, version, job id."""
        _, labels_version, version, job_id = (text(x) for x in outcome)
        return Change(version=int(version), labels_version=int(labels_version), job_id=job_id or None)

    def index_tenants(self) -> int:
        """Enters pools stored before tenants had indexes into theirs (once per Redis); how many."""
        return tenant_index.backfill(self.redis, self.scripts)

    # -- reads ----------------------------------------------------------------------------------

    def exists(self, pool_id: str) -> bool:
        return bool(self.redis.exists(PoolKeys(pool_id).meta))

    def sizes(self, pool_id: str) -> PoolSizes:
        n_items, dim, ranked_version = self.redis.hmget(PoolKeys(pool_id).meta, ["n_items", "dim", "ranked_version"])
        return PoolSizes(n_items=int(n_items or 0), dim=int_or_none(dim), ranked_version=int_or_none(ranked_version))

    def owner(self, pool_id: str) -> str | None:
        """The pool's tenant ("" for none); None for a pool that does not exist."""
        owner = self.redis.hget(PoolKeys(pool_id).meta, "tenant")
        return None if owner is None else text(owner)

    def query(
        self,
        pool_id: str,
        k: int,
        strategy: str | None,
        lease_ms: int = 0,
        annotator: str = "",
        audit: bool = True,
    ) -> Ranking:
        """The head of the pool's ranking for the strategy (its default: None); with lease_ms > 0 the
        returned items are leased to the caller; `audit=False` (a poll) mixes in no audit items."""
        return read_top(self.redis, self.scripts, pool_id, k, strategy, lease_ms, annotator, audit)

    def present_ids(self, pool_id: str, ids: list[str]) -> list[str]:
        """Which of these ids the pool holds, in the order given."""
        keys = PoolKeys(pool_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.exists(keys.meta)
        pipe.hmget(keys.rows, ids)
        exists, rows = pipe.execute()
        if not exists:
            raise pool_not_found(pool_id)
        return [item for item, row in zip(ids, rows, strict=True) if row is not None]

    def full_ranking(self, pool_id: str) -> FullRanking:
        return read_all(self.redis, pool_id)

    def status(self, pool_id: str) -> dict:
        pipe = self.redis.pipeline(transaction=True)
        _read_status(pipe, pool_id)
        status = _status(pool_id, *pipe.execute())
        if status is None:
            raise pool_not_found(pool_id)
        return status

    def statuses(self, pool_ids: list[str]) -> list[dict]:
        """The status of each pool that exists, in one round trip."""
        pipe = self.redis.pipeline(transaction=True)
        for pool_id in pool_ids:
            _read_status(pipe, pool_id)
        replies = pipe.execute()
        found = (_status(pool_id, *replies[4 * i : 4 * i + 4]) for i, pool_id in enumerate(pool_ids))
        return [status for status in found if status is not None]

    def list_page(self, tenant: str, after: str, limit: int) -> tuple[list[str], str | None]:
        """Up to `limit` of the tenant's pool ids after `after`, in id order, and the cursor of the next page
        (None on the last)."""
        start = f"({after}" if after else "-"
        ids = [
            text(x)
            for x in self.redis.zrange(TenantKeys(tenant).pools, start, "+", bylex=True, offset=0, num=limit + 1)
        ]
        return ids[:limit], (ids[limit - 1] if len(ids) > limit else None)

    def history(self, pool_id: str) -> dict:
        """Every model version's entry, oldest first, with the pool's stopping policy and recommendation."""
        keys = PoolKeys(pool_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(keys.meta, ["n_items", "stopping", "stop", "n_labeled", "name"])
        pipe.hvals(keys.history)
        (n_items, stopping, stop, n_labeled, name), entries = pipe.execute()
        if n_items is None:
            raise pool_not_found(pool_id)
        policy = StoppingPolicy.from_spec(json.loads(stopping) if stopping else None)
        return {
            "pool_id": pool_id,
            "name": text(name) if name else None,
            "stopping": policy.to_spec(),
            "stop": stop_answer(text(stop) if stop else None, int(n_labeled or 0), policy.budget),
            "versions": sorted((json.loads(e) for e in entries), key=lambda e: e["model_version"]),
        }

    def featurizer(self, pool_id: str) -> dict | None:
        """A text pool's featurizer; None for a pool of feature vectors."""
        raw = self.redis.hmget(PoolKeys(pool_id).meta, ["n_items", "featurizer"])
        if raw[0] is None:
            raise pool_not_found(pool_id)
        return json.loads(raw[1]) if raw[1] else None

    def known_ids(self, pool_id: str, ids: list[str]) -> list[bool]:
        """For each id, whether the pool holds it."""
        return [row is not None for row in self.redis.hmget(PoolKeys(pool_id).rows, ids)] if ids else []

    def labels_of(self, pool_id: str, ids: list[str]) -> dict[str, str | None]:
        """The label of each id the pool holds (None: unlabeled); ids it does not hold are left out."""
        keys = PoolKeys(pool_id)
        out = {}
        for start in range(0, len(ids), MAX_ITEMS_PER_CALL):
            chunk = ids[start : start + MAX_ITEMS_PER_CALL]
            rows = self.redis.hmget(keys.rows, chunk)
            held = [(i, r) for i, r in zip(chunk, rows) if r is not None]
            labels = self.redis.hmget(keys.labels, [r for _, r in held]) if held else []
            out.update({i: None if raw is None else label_values.decode(raw) for (i, _), raw in zip(held, labels)})
        return out

    def item_ids(self, pool_id: str) -> list[str]:
        """Every id the pool holds, in no particular order, read a batch at a time."""
        scan = self.redis.hscan_iter(PoolKeys(pool_id).rows, count=5000)
        return list(dict.fromkeys(text(raw) for raw, _ in scan))

    def rows_of(self, pool_id: str, ids: list[str]) -> list[int]:
        rows = self.redis.hmget(PoolKeys(pool_id).rows, ids)
        missing = [ids[i] for i, r in enumerate(rows) if r is None]
        if missing:
            raise _not_in_pool(missing[:20], ids, "ids[{}]")
        return [int(r) for r in rows]


def _meta(config: PoolConfig, features: np.ndarray | None, seed: int) -> dict[str, str]:
    """A new pool's meta fields."""
    return {
        "name": config.name or "",
        "created_at": repr(time.time()),
        "model": json.dumps(config.model),
        "strategy": config.strategy,
        "random_state": "" if config.random_state is None else str(config.random_state),
        "seed": str(seed),
        "classes": "" if config.classes is None else json.dumps(config.classes),
        # The classes as the teach script compares them: the stored form of each label.
        "allowed_labels": "" if config.classes is None else _allowed_labels(config.classes),
        "n_items": "0",
        "dim": "" if features is None else str(features.shape[1]),
        "chunk_rows": "" if features is None else str(rows_per_chunk(features.shape[1])),
        # A text pool's rows are stored sparse: their size follows the text, not the columns.
        "layout": SPARSE if config.featurizer else "",
        "version": "0",
        "labels_version": "0",
        "label_kind": "",
        "tenant": config.tenant or "",
        "featurizer": json.dumps(config.featurizer) if config.featurizer else "",
        "n_labeled": "0",
        "n_eval": "0",
        **_stopping_fields(config.stopping),
    }


def _other_kind(stored_kind: str) -> InvalidInput:
    noun = "strings" if stored_kind == "str" else "integers"
    return InvalidInput(f"this pool's labels are {noun}", field="labels")


def _stored_values(features, sparse_layout: bool) -> int:
    """Values a batch of rows adds to a pool's storage: its non-zeros in a text pool, items x dimension
    elsewhere."""
    return int(features.nnz) if sparse_layout else int(features.shape[0]) * int(features.shape[1])


SPLIT_CODES = {"train": "t", "eval": "e"}
"""The teach script's code of each split; a label that names none is coded 'd' (see teach.lua)."""


def _stopping_fields(policy: StoppingPolicy) -> dict[str, str]:
    """The meta fields of a stopping policy: the policy itself, and its budget apart, since the query script
    reads budget and enforce_budget beside n_labeled, in its one round trip."""
    return {
        "stopping": json.dumps(policy.to_spec()),
        "budget": "" if policy.budget is None else str(policy.budget),
        "enforce_budget": "1" if policy.enforce_budget else "0",
        "audit_rate": repr(policy.audit_rate),
    }


def _allowed_labels(classes: list) -> str:
    """A closed list of classes as the teach script compares labels: each in its stored form."""
    return json.dumps([label_values.encode(c) for c in classes])


def _not_in_pool(missing: list[str], ids: list[str], field: str) -> InvalidInput:
    """The error for ids a pool does not hold, naming the first one's place in the request."""
    return InvalidInput(f"these ids are not in the pool: {missing}", field=field.format(ids.index(missing[0])))


def _read_status(pipe, pool_id: str) -> None:
    keys = PoolKeys(pool_id)
    pipe.hgetall(keys.meta)
    pipe.hgetall(keys.class_counts)
    pipe.get(keys.pending)
    pipe.get(keys.running)


def _status(pool_id: str, meta, counts, pending, running) -> dict | None:
    """A pool's status from what _read_status read; None when the pool does not exist."""
    meta = decode_hash(meta)
    if not meta:
        return None
    counts = {label_values.decode(k): int(v) for k, v in counts.items()}
    n_items = int(meta["n_items"])
    n_labeled = sum(counts.values())
    n_eval = int(meta.get("n_eval") or 0)
    policy = StoppingPolicy.from_spec(json.loads(meta["stopping"]) if meta.get("stopping") else None)
    return {
        "pool_id": pool_id,
        "tenant": meta.get("tenant") or None,
        "name": meta["name"] or None,
        "created_at": float(meta["created_at"]),
        "model": json.loads(meta["model"]),
        "strategy": meta["strategy"],
        "random_state": int_or_none(meta["random_state"]),
        "classes": json.loads(meta["classes"]) if meta["classes"] else None,
        "dimension": int_or_none(meta["dim"]),
        "featurizer": json.loads(meta["featurizer"]) if meta.get("featurizer") else None,
        "n_items": n_items,
        "n_labeled": n_labeled,
        "n_eval": n_eval,
        "n_unlabeled": n_items - n_labeled - n_eval,
        "classes_seen": {str(k): v for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))},
        "labels_version": int(meta["labels_version"]),
        "version": int(meta["version"]),
        "model_version": int_or_none(meta.get("model_version")),
        "ranked_version": int_or_none(meta.get("ranked_version")),
        "cold_start": len(counts) < 2,
        "stopping": policy.to_spec(),
        "stop": stop_answer(meta.get("stop"), n_labeled, policy.budget),
        "estimate": json.loads(meta["estimate"]) if meta.get("estimate") else None,
        "retrain": {
            "queued": pending is not None,
            "running": running is not None,
            "queued_job_id": text(pending) if pending else None,
            "running_job_id": text(running) if running else None,
            "last_finished_at": float(meta["last_finished_at"]) if meta.get("last_finished_at") else None,
            "last_duration_s": float(meta["last_duration_s"]) if meta.get("last_duration_s") else None,
            "last_error": meta.get("last_error") or None,
        },
    }
