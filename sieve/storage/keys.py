"""The Redis key layout, the one place that names Sieve's keys; every key of a pool shares one hash tag,
so one cluster slot. Job ids, which RQ's keys and the pools' marks hold, are named in job_ids.py.

The names are stored data: a name changed here orphans what existing deployments keep under the old one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sieve.core.selection import ALL_STRATEGIES

EVERY_KEY = "sieve:*"
"""A SCAN pattern that matches every key of Sieve's, and no key of RQ's."""

POOL_INDEX = "sieve:pools"
"""A set of every pool id, for the workers' sweeper and /metrics; listing reads the tenant's index."""

TENANT_INDEX_READY = "sieve:tenant_index_ready"
"""Set once every pool of `sieve:pools` is in its tenant's index (pools made before those indexes existed)."""

LABELSTUDIO_PROJECTS = "sieve:labelstudio:projects"
"""A hash: `<tenant>/<Label Studio project id>` → the pool that serves the project."""

API_KEYS = "sieve:api_keys"
"""A hash: key id → JSON {tenant, digest of the secret, name, created_at}."""

AUTH_REQUIRED = "sieve:auth_required"
"""Set by the first key ever created: revoking every key locks the API rather than opening it."""

JOB_STATS = "sieve:job_stats"
"""A hash of refresh outcomes and durations (histogram buckets and sum), counted by the workers."""


@dataclass(frozen=True)
class TenantKeys:
    """Names of one tenant's keys (auth off: the empty tenant); they share one hash tag, the tenant's."""

    tenant: str

    EVERY_KEY = "sieve:tenant:*"
    """A SCAN pattern that matches every key of every tenant."""

    @property
    def prefix(self) -> str:
        # Hex keeps any tenant name, braces included, inside its own hash tag.
        return f"sieve:tenant:{{t{self.tenant.encode().hex()}}}"

    @property
    def pools(self) -> str:
        """A sorted set of the tenant's pool ids, all with score 0, so that pages are lexical ranges."""
        return f"{self.prefix}:pools"

    @property
    def creates(self) -> str:
        """Idempotency-Key → JSON {hash, pool}: the pool the key's create made, and the request's digest."""
        return f"{self.prefix}:creates"

    @property
    def creates_at(self) -> str:
        return f"{self.prefix}:creates_at"


@dataclass(frozen=True)
class PoolKeys:
    """Names of the keys that hold one pool."""

    pool_id: str

    @property
    def prefix(self) -> str:
        return f"sieve:{{{self.pool_id}}}"

    @property
    def every_key(self) -> str:
        """A SCAN pattern that matches every key of the pool."""
        return f"{self.prefix}:*"

    @property
    def meta(self) -> str:
        return f"{self.prefix}:meta"

    @property
    def ids(self) -> str:
        return f"{self.prefix}:ids"

    @property
    def rows(self) -> str:
        return f"{self.prefix}:rows"

    @property
    def labels(self) -> str:
        return f"{self.prefix}:labels"

    @property
    def labeled(self) -> str:
        return f"{self.prefix}:labeled"

    @property
    def class_counts(self) -> str:
        return f"{self.prefix}:class_counts"

    @property
    def log(self) -> str:
        return f"{self.prefix}:log"

    @property
    def eval(self) -> str:
        return f"{self.prefix}:eval"

    @property
    def audit(self) -> str:
        """Rows a query served as audit items (drawn uniformly at random): taught without a split, their
        labels go to the evaluation split."""
        return f"{self.prefix}:audit"

    @property
    def history(self) -> str:
        return f"{self.prefix}:history"

    @property
    def stop_set(self) -> str:
        return f"{self.prefix}:stop_set"

    @property
    def stop_labels(self) -> str:
        return f"{self.prefix}:stop_labels"

    @property
    def model(self) -> str:
        return f"{self.prefix}:model"

    @property
    def proba(self) -> str:
        return f"{self.prefix}:proba"

    @property
    def cursor(self) -> str:
        return f"{self.prefix}:cursor"

    @property
    def leases(self) -> str:
        return f"{self.prefix}:leases"

    @property
    def lease_owners(self) -> str:
        return f"{self.prefix}:lease_owners"

    @property
    def returned(self) -> str:
        """Items whose lease ended without a label, behind the frontier of the rankings."""
        return f"{self.prefix}:returned"

    @property
    def held(self) -> str:
        """Each named annotator's live leases, as members '<annotator>\\0<row>' of a sorted set."""
        return f"{self.prefix}:held"

    @property
    def idempotency(self) -> str:
        return f"{self.prefix}:idem"

    @property
    def idempotency_at(self) -> str:
        return f"{self.prefix}:idem_at"

    @property
    def pending(self) -> str:
        return f"{self.prefix}:pending"

    @property
    def running(self) -> str:
        return f"{self.prefix}:running"

    @property
    def lost(self) -> str:
        return f"{self.prefix}:lost"

    @property
    def labelstudio(self) -> str:
        """The Label Studio project this pool serves, and how to reach it."""
        return f"{self.prefix}:labelstudio"

    @property
    def ls_annotations(self) -> str:
        """Label Studio annotation id → the task it labels and the label it gave."""
        return f"{self.prefix}:ls_annotations"

    @property
    def ls_deleted(self) -> str:
        """Items whose Label Studio task was deleted: no predictions are pushed for them."""
        return f"{self.prefix}:ls_deleted"

    @property
    def ls_sync(self) -> str:
        """The lock a running Label Studio sync holds: one sync per pool at a time."""
        return f"{self.prefix}:ls_sync"

    @property
    def ls_sync_due(self) -> str:
        """Lives for one sync period after the last periodic sync was queued."""
        return f"{self.prefix}:ls_sync_due"

    def chunk(self, index: int) -> str:
        return f"{self.prefix}:x:{index}"

    def sparse_chunk(self, index: int) -> tuple[str, str, str]:
        """A text pool's chunk: its rows' non-zero counts (<u2), column indices (<u2) and values (<f4)."""
        return f"{self.prefix}:xn:{index}", f"{self.prefix}:xi:{index}", f"{self.prefix}:xv:{index}"

    @property
    def every_shard_key(self) -> str:
        """A SCAN pattern that matches the keys of every sharded refresh of the pool."""
        return f"{self.prefix}:shard:*"

    def shard_plan(self, run: str) -> str:
        """A sharded refresh's plan (hash): its job, version, row ranges, strategies and signed model."""
        return f"{self.prefix}:shard:{run}:plan"

    def shard_claim(self, run: str, index: int) -> str:
        """Who scores shard `index` of the run now (expires unless its scorer renews it)."""
        return f"{self.prefix}:shard:{run}:claim:{index}"

    def shard_scores(self, run: str, index: int) -> str:
        """What shard `index` of the run scored (hash): its probabilities, and per strategy its order."""
        return f"{self.prefix}:shard:{run}:scores:{index}"

    def rank(self, strategy: str) -> str:
        return f"{self.prefix}:rank:{strategy}"

    def score(self, strategy: str) -> str:
        return f"{self.prefix}:score:{strategy}"

    def ranking_keys(self) -> list[str]:
        """Rank and score keys of every strategy, in ALL_STRATEGIES order, interleaved."""
        keys = []
        for strategy in ALL_STRATEGIES:
            keys += [self.rank(strategy), self.score(strategy)]
        return keys

    def all_keys(self, n_chunks: int) -> list[str]:
        fixed = [
            self.meta,
            self.ids,
            self.rows,
            self.labels,
            self.labeled,
            self.class_counts,
            self.log,
            self.model,
            self.proba,
            self.cursor,
            self.leases,
            self.lease_owners,
            self.returned,
            self.held,
            self.idempotency,
            self.idempotency_at,
            self.pending,
            self.running,
            self.lost,
            self.labelstudio,
            self.ls_annotations,
            self.ls_deleted,
            self.ls_sync,
            self.ls_sync_due,
            self.eval,
            self.audit,
            self.history,
            self.stop_set,
            self.stop_labels,
        ]
        return (
            fixed
            + self.ranking_keys()
            + [key for i in range(n_chunks) for key in (self.chunk(i), *self.sparse_chunk(i))]
        )


ANY_POOL = PoolKeys("*")
"""Its names are SCAN patterns that match the key of that name of every pool: `ANY_POOL.meta`."""
