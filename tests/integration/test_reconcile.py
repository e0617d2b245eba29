"""The reconciliation against a real Redis, with what webhooks change while a reading is under way."""

from __future__ import annotations

import numpy as np

from sieve.core.items import ItemBatch
from sieve.labelstudio.reconcile import Reconciler
from sieve.storage.link_store import Link, LinkStore
from sieve.use_cases import Pools, PoolSpec


def _annotated(task_id: int, annotation_id: int, label: str) -> dict:
    return {
        "id": task_id,
        "data": {},
        "annotations": [
            {
                "id": annotation_id,
                "result": [{"from_name": "sentiment", "type": "choices", "value": {"choices": [label]}}],
            }
        ],
    }


def _pool(redis, settings) -> tuple[Pools, Link]:
    # Its own queue: the refreshes these changes ask for need no worker here.
    pools = Pools(redis, settings.with_overrides(queue_name="reconcile-test"))
    pool_id = pools.create(
        PoolSpec(classes=["Positive", "Negative"]), ItemBatch(ids=["1", "2"], features=np.eye(2, dtype=np.float32))
    )
    return pools, Link(
        pool_id=pool_id, project="1.1", project_id=1, from_name="sentiment", to_name="text", field="text"
    )


def test_a_task_added_while_the_reading_went_on_is_not_taken_for_deleted(redis, settings):
    pools, link = _pool(redis, settings)
    reconciler = Reconciler(pools, LinkStore(redis))
    reading = reconciler.reading(link)
    # TASKS_CREATED arrives after the pages that would have listed task 3 were read.
    pools.add_items(link.pool_id, ItemBatch(ids=["3"], features=np.ones((1, 2), dtype=np.float32)))
    reading.add([_annotated(1, 11, "Positive"), _annotated(2, 12, "Negative")])
    reconciler.apply(reading, before={}, complete=True)
    assert "3" not in LinkStore(redis).deleted(link.pool_id)
    assert pools.status(link.pool_id)["n_labeled"] == 2


def test_a_task_deleted_while_the_reading_went_on_keeps_no_label(redis, settings):
    pools, link = _pool(redis, settings)
    reconciler = Reconciler(pools, LinkStore(redis))
    reading = reconciler.reading(link)
    reading.add([_annotated(1, 11, "Positive"), _annotated(2, 12, "Negative")])
    # TASKS_DELETED for task 2 arrives after its page was read, before the reading is applied.
    LinkStore(redis).mark_deleted(link.pool_id, ["2"])
    reconciler.apply(reading, before={}, complete=True)
    status = pools.status(link.pool_id)
    assert status["n_labeled"] == 1 and status["classes_seen"] == {"Positive": 1}
