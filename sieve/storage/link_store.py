"""Label Studio links in Redis: project → pool, the project's label config and how to reach it, and which
annotation labeled which task."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis
from redis.lock import Lock

from sieve.storage.keys import LABELSTUDIO_PROJECTS, PoolKeys
from sieve.storage.replies import decode_hash, text


@dataclass(frozen=True)
class Link:
    """A pool's Label Studio project. `token` is a secret: it is read by the push job only, never logged
    nor answered."""

    pool_id: str
    project: str
    project_id: int
    from_name: str
    to_name: str
    field: str
    hostname: str = ""
    token: str = ""
    vectors: bool = False
    """Whether `field` holds each task's vector (an image or audio project), rather than its text."""

    def __repr__(self) -> str:  # keeps the token out of logs and tracebacks
        return f"Link(pool_id={self.pool_id!r}, project={self.project!r}, hostname={self.hostname!r})"


class LinkStore:
    def __init__(self, redis: Redis):
        self.redis = redis

    @staticmethod
    def _project_field(tenant: str | None, project_id: int) -> str:
        return f"{tenant or ''}/{project_id}"

    def claim(self, tenant: str | None, project: str, project_id: int, pool_id: str) -> str:
        """Points the project at `pool_id`, unless it already has a live pool of its own: the pool it is
        to use. The project's id is taken by a new `<id>.<created>` (another Label Studio database)."""
        field = self._project_field(tenant, project_id)

        def attempt(pipe):
            current = pipe.hget(LABELSTUDIO_PROJECTS, field)
            if current is not None:
                keys = PoolKeys(text(current))
                if pipe.exists(keys.meta) and pipe.hget(keys.labelstudio, "project") == project.encode():
                    pipe.multi()
                    return text(current)
            pipe.multi()
            pipe.hset(LABELSTUDIO_PROJECTS, field, pool_id)
            return pool_id

        return self.redis.transaction(attempt, LABELSTUDIO_PROJECTS, value_from_callable=True)

    def find(self, tenant: str | None, project: str, project_id: int) -> Link | None:
        """The link of this very project (`<id>.<created>`), if its pool still exists."""
        pool_id = self.pool_of(tenant, project_id)
        link = self.load(pool_id) if pool_id else None
        if link is None or link.project != project or not self.redis.exists(PoolKeys(pool_id).meta):
            return None
        return link

    def save(self, link: Link, tenant: str | None, index: bool = True) -> None:
        """Records the link and (with `index`) points the project's id at its pool. A token belongs to the
        origin it came with: a new hostname without a token drops the stored one, so that it is never sent
        to another host."""
        key = PoolKeys(link.pool_id).labelstudio
        fields = {
            "project": link.project,
            "project_id": str(link.project_id),
            "from_name": link.from_name,
            "to_name": link.to_name,
            "field": link.field,
            "kind": "vector" if link.vectors else "text",
        }
        # Setup from a project's own predict call carries no host or token: keep those of an earlier setup.
        if link.hostname:
            fields["hostname"] = link.hostname
        if link.token:
            fields["token"] = link.token

        def attempt(pipe):
            moved = link.hostname and not link.token and text(pipe.hget(key, "hostname") or b"") != link.hostname
            pipe.multi()
            pipe.hset(key, mapping=fields)
            if moved:
                pipe.hdel(key, "token")
            if index:
                pipe.hset(LABELSTUDIO_PROJECTS, self._project_field(tenant, link.project_id), link.pool_id)

        self.redis.transaction(attempt, key)

    def pool_of(self, tenant: str | None, project_id: int) -> str | None:
        pool_id = self.redis.hget(LABELSTUDIO_PROJECTS, self._project_field(tenant, project_id))
        return text(pool_id) if pool_id else None

    def pools(self, tenant: str | None = None) -> list[str]:
        """The pools Label Studio projects point at: the tenant's, or (None) every tenant's."""
        prefix = None if tenant is None else f"{tenant}/"
        return sorted(
            {
                text(pool)
                for field, pool in self.redis.hscan_iter(LABELSTUDIO_PROJECTS, count=1000)
                if prefix is None or text(field).startswith(prefix)
            }
        )

    def load(self, pool_id: str) -> Link | None:
        raw = decode_hash(self.redis.hgetall(PoolKeys(pool_id).labelstudio))
        if not raw.get("project"):
            return None
        return Link(
            pool_id=pool_id,
            project=raw["project"],
            project_id=int(raw["project_id"]),
            from_name=raw["from_name"],
            to_name=raw["to_name"],
            field=raw["field"],
            hostname=raw.get("hostname", ""),
            token=raw.get("token", ""),
            vectors=raw.get("kind") == "vector",
        )

    def is_linked(self, pool_id: str) -> bool:
        return bool(self.redis.exists(PoolKeys(pool_id).labelstudio))

    # -- annotations ----------------------------------------------------------------------------------

    def remember(self, pool_id: str, annotation_id: int, task: str, label: str) -> None:
        self.redis.hset(
            PoolKeys(pool_id).ls_annotations, str(annotation_id), json.dumps({"task": task, "label": label})
        )

    def knows(self, pool_id: str, annotation_id: int) -> bool:
        return bool(self.redis.hexists(PoolKeys(pool_id).ls_annotations, str(annotation_id)))

    def forget(self, pool_id: str, annotation_ids: list[int]) -> dict[str, str | None]:
        """Drops these annotations; for each task they labeled, the label its latest remaining
        annotation gives (None when none remains)."""
        key = PoolKeys(pool_id).ls_annotations
        found = self.redis.hmget(key, [str(a) for a in annotation_ids]) if annotation_ids else []
        tasks = {json.loads(raw)["task"] for raw in found if raw}
        if not tasks:
            return {}
        self.redis.hdel(key, *[str(a) for a in annotation_ids])
        # Deletions are rare; one pass over the pool's annotations finds what is left of these tasks.
        remaining: dict[str, tuple[int, str]] = {}
        for annotation, raw in self.redis.hscan_iter(key, count=1000):
            entry = json.loads(raw)
            if entry["task"] in tasks and int(annotation) >= remaining.get(entry["task"], (-1, ""))[0]:
                remaining[entry["task"]] = (int(annotation), entry["label"])
        return {task: remaining[task][1] if task in remaining else None for task in tasks}

    def annotations(self, pool_id: str) -> dict[str, tuple[str, str]]:
        """Every remembered annotation id → (task, label)."""
        out = {}
        for annotation, raw in self.redis.hscan_iter(PoolKeys(pool_id).ls_annotations, count=1000):
            entry = json.loads(raw)
            out[text(annotation)] = (entry["task"], entry["label"])
        return out

    def replace_annotations(self, pool_id: str, drop: list[str], keep: dict[str, tuple[str, str]]) -> None:
        """Drops some annotations and records others (id → (task, label)), in one step."""
        key = PoolKeys(pool_id).ls_annotations
        with self.redis.pipeline(transaction=True) as pipe:
            if drop:
                pipe.hdel(key, *drop)
            if keep:
                pipe.hset(key, mapping={a: json.dumps({"task": t, "label": label}) for a, (t, label) in keep.items()})
            pipe.execute()

    # -- syncs ----------------------------------------------------------------------------------------

    def sync_lock(self, pool_id: str, seconds: float) -> Lock:
        """The pool's sync lock (taken with `acquire(blocking=False)`); it expires after `seconds`, so that
        a worker killed mid-sync does not stop the pool's syncs for longer."""
        return Lock(self.redis, PoolKeys(pool_id).ls_sync, timeout=seconds)

    def sync_due(self, pool_ids: list[str], seconds: float, force: bool = False) -> list[str]:
        """The linked pools among `pool_ids` whose periodic sync is due, each marked as done for `seconds`
        (with `force`, every linked pool): among many workers, one queues each pool's sync."""
        pipe = self.redis.pipeline(transaction=False)
        for pool_id in pool_ids:
            pipe.exists(PoolKeys(pool_id).labelstudio)
        linked = [p for p, yes in zip(pool_ids, pipe.execute()) if yes]
        for pool_id in linked:
            pipe.set(PoolKeys(pool_id).ls_sync_due, 1, px=int(seconds * 1000), nx=not force)
        return [p for p, due in zip(linked, pipe.execute()) if due]

    # -- deleted tasks --------------------------------------------------------------------------------

    def mark_deleted(self, pool_id: str, items: list[str]) -> None:
        if items:
            self.redis.sadd(PoolKeys(pool_id).ls_deleted, *items)

    def deleted(self, pool_id: str) -> set[str]:
        return {text(item) for item in self.redis.smembers(PoolKeys(pool_id).ls_deleted)}
