"""Makes a linked pool's labels equal its Label Studio project's, from a reading of the project's tasks.

Webhooks keep a pool up to date while Sieve runs; what Label Studio changed while Sieve was down (it
never sends a failed webhook again) is found here. For each task Label Studio lists, its latest annotation
(by id) that is not cancelled and chooses one of the pool's classes gives the label; a task without one
has none. A task the pool holds that a complete listing no longer names was deleted.
"""

from __future__ import annotations

from sieve.labelstudio import protocol
from sieve.limits import MAX_ITEMS_PER_CALL
from sieve.storage.link_store import Link, LinkStore
from sieve.use_cases import Pools


class Reading:
    """What a reading of the project found: every task listed, and the labeled annotations of those that
    have any (kept sparse: most tasks of a project have none)."""

    def __init__(self, link: Link, classes: set, items: set[str] | None = None):
        self.link = link
        self.classes = classes
        self.items: set[str] = items or set()
        """The pool's task items when the reading began: only those can be found deleted by it."""
        self.seen: set[str] = set()
        """Every task listed."""
        self.unreadable: set[str] = set()
        """Tasks whose annotations came without their results: their labels stay as they are."""
        self.annotations: dict[str, dict[str, str]] = {}
        """task (item id) → {annotation id → label} of its annotations that give a label."""
        self.latest: dict[str, str] = {}
        """task → the label of its latest labeled annotation; a task without one is absent."""

    def add(self, tasks: list) -> None:
        for task in tasks:
            item_id = protocol.task_id(task)
            if item_id is None:
                continue
            self.seen.add(item_id)
            annotations = task.get("annotations")
            if not isinstance(annotations, list) or not all(_readable(a) for a in annotations):
                self.unreadable.add(item_id)
                continue
            found, best = {}, (-1, None)
            for annotation in annotations:
                label = protocol.annotation_choice(annotation, self.link.from_name)
                annotation_id = annotation.get("id")
                if label is None or label not in self.classes or type(annotation_id) is not int:
                    continue
                found[str(annotation_id)] = label
                if annotation_id > best[0]:
                    best = (annotation_id, label)
            if found:
                self.annotations[item_id] = found
                self.latest[item_id] = best[1]


def _readable(annotation) -> bool:
    return isinstance(annotation, dict) and (annotation.get("was_cancelled") is True or "result" in annotation)


class Reconciler:
    def __init__(self, pools: Pools, links: LinkStore):
        self.pools = pools
        self.links = links

    def reading(self, link: Link) -> Reading:
        return Reading(link, set(self.pools.status(link.pool_id)["classes"] or []), set(self._task_items(link.pool_id)))

    def apply(self, reading: Reading, before: dict[str, tuple[str, str]], complete: bool) -> dict:
        """Relabels, unlabels and marks deleted what differs. `before`: the pool's remembered annotations
        when the reading began; a task whose annotations a webhook changed since is left as the webhook
        left it, since the webhook is newer than the reading. Only with a `complete` reading are tasks it
        does not name taken for deleted."""
        pool_id = reading.link.pool_id
        now = self.links.annotations(pool_id)
        touched = (
            {now[a][0] for a in now.keys() - before.keys()}
            | {before[a][0] for a in before.keys() - now.keys()}
            | {now[a][0] for a in now.keys() & before.keys() if now[a] != before[a]}
        )
        # A task deleted (by its webhook) while the reading went on keeps no label, whatever its page said.
        gone = self.links.deleted(pool_id)
        listed = [t for t in reading.seen if t not in touched and t not in reading.unreadable and t not in gone]
        current = self.pools.labels_of(pool_id, listed)
        relabel = {t: reading.latest[t] for t in current if t in reading.latest and reading.latest[t] != current[t]}
        unlabel = [t for t, label in current.items() if label is not None and t not in reading.latest]
        deleted = []
        if complete:
            # Only tasks the pool held when the reading began: one added since may be missing from its pages.
            deleted = [t for t in reading.items if t not in reading.seen and t not in gone and t not in touched]
        ids = list(relabel)
        for start in range(0, len(ids), MAX_ITEMS_PER_CALL):
            chunk = ids[start : start + MAX_ITEMS_PER_CALL]
            self.pools.teach(pool_id, chunk, [relabel[t] for t in chunk], source="labelstudio")
        unlabeled = 0
        for ids in (unlabel, deleted):
            for start in range(0, len(ids), MAX_ITEMS_PER_CALL):
                unlabeled += self.pools.unlabel(pool_id, ids[start : start + MAX_ITEMS_PER_CALL], source="labelstudio")[
                    0
                ]
        self.links.mark_deleted(pool_id, deleted)
        # Which annotation labels which task, as the reading found it, for the webhooks that follow.
        settled = set(current) | set(deleted)
        keep = {a: (t, label) for t in current for a, label in reading.annotations.get(t, {}).items()}
        drop = [a for a, (t, _) in now.items() if t in settled and a not in keep]
        self.links.replace_annotations(pool_id, drop, keep)
        return {"relabeled": len(relabel), "unlabeled": unlabeled, "deleted": len(deleted)}

    def _task_items(self, pool_id: str) -> list[str]:
        """The pool's items that stand for Label Studio tasks."""
        return [i for i in self.pools.item_ids(pool_id) if protocol.task_of_item(i) is not None]
