"""Redis SIGKILLed and restarted on its data: no acknowledged label may be lost (AOF with `appendfsync
always`), no call may be acknowledged that is not recorded, and the service must work again afterwards."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from sieve.storage.keys import PoolKeys
from tests.fault.conftest import (
    PROBLEM_JSON,
    RetrainLost,
    Watch,
    label_log,
    labeled_bits,
    labels_by_id,
    make_random_pool,
    make_slow_pool,
    pool_meta,
    teach,
    teach_through,
    wait_until,
)

N_ITEMS, N_CLIENTS = 20_000, 4
OUTAGE_S = 3.0
"""About as long as redis-py's own retries of a failed command (10 tries, backoff capped at 1 s: 0-5 s in
all, ~2.6 s on average), so that most calls made during the outage fail and a few ride it out."""


class Teacher(threading.Thread):
    """A labeling client: one label per teach call, a fresh id each time, and it never gives up."""

    def __init__(self, url: str, pool_id: str, ids: list[str], clock):
        super().__init__(daemon=True)
        self.url, self.pool_id, self.ids, self.clock = url, pool_id, ids, clock
        self.stop = threading.Event()
        self.calls: list[dict] = []

    def run(self):
        session = requests.Session()
        for item_id in self.ids:
            if self.stop.is_set():
                break
            label = "pos" if int(item_id[1:]) % 3 else "neg"
            call = {"id": item_id, "label": label, "phase": self.clock()}
            try:
                answer = session.post(
                    f"{self.url}/v1/pools/{self.pool_id}/teach",
                    timeout=30,
                    json={"labels": [{"id": item_id, "label": label}]},
                )
                call.update(
                    status=answer.status_code,
                    content_type=answer.headers.get("Content-Type", ""),
                    body=answer.json() if answer.content else None,
                )
            except requests.RequestException as error:
                call.update(status=None, error=type(error).__name__)
            self.calls.append(call)
            if call["status"] != 202:
                time.sleep(0.02)
        session.close()


def test_every_acknowledged_label_survives_a_redis_restart_mid_teach(make_stack):
    stack = make_stack(job_retries=1)
    stack.start_redis(appendfsync="always")
    stack.start_worker()
    stack.start_api()
    url = stack.api_url

    pool_id = make_random_pool(url, N_ITEMS, seed=3)

    def crash_redis(phase):
        stack.kill_redis()
        phase[0] = "outage"
        time.sleep(OUTAGE_S)
        stack.start_redis(appendfsync="always")

    teachers = teach_through(
        crash_redis, lambda ids, when: Teacher(url, pool_id, ids, when), N_ITEMS, N_CLIENTS, acked_each_side=150
    )
    calls = [c for t in teachers for c in t.calls]

    # During the outage a call may fail, but only as a 5xx problem or a broken connection; never a 4xx
    # (a 404 would mean the pool vanished) and never a 2xx other than 202.
    wrong = [
        c
        for c in calls
        if not (c["status"] == 202 or c["status"] is None or (c["status"] >= 500 and c["content_type"] == PROBLEM_JSON))
    ]
    assert wrong == [], wrong[:5]
    assert any(c["status"] != 202 for c in calls), "no call noticed the outage: the test proved nothing"

    redis = stack.redis()
    log = label_log(redis, pool_id)
    labels = labels_by_id(redis, pool_id)
    meta = pool_meta(redis, pool_id)
    ok = [c for c in calls if c["status"] == 202]
    # Every acknowledged label is there: in the labels hash, the labeled bitmap and the log, under the
    # labels_version its answer named.
    missing = [c for c in ok if labels.get(c["id"]) != c["label"]]
    assert missing == [], f"{len(missing)} acknowledged labels lost, e.g. {missing[:5]}"
    assert {c["id"] for c in ok} <= labeled_bits(redis, pool_id)
    logged = {(e["labels_version"], tuple(e["ids"]), tuple(e["labels"])) for e in log}
    unlogged = [c for c in ok if (c["body"]["labels_version"], (c["id"],), (c["label"],)) not in logged]
    assert unlogged == [], f"{len(unlogged)} acknowledged calls are not in the label log, e.g. {unlogged[:5]}"
    # Nothing else is there: every recorded label comes from a call that was made, and the store agrees
    # with itself (log versions 1..labels_version without a gap, counts = labels).
    sent = {c["id"]: c["label"] for c in calls}
    assert all(sent.get(i) == label for i, label in labels.items())
    assert [e["labels_version"] for e in log] == list(range(1, int(meta["labels_version"]) + 1))
    assert {i for e in log for i in e["ids"]} == set(labels)
    status = requests.get(f"{url}/v1/pools/{pool_id}", timeout=30).json()
    assert status["n_labeled"] == len(labels) == redis.hlen(PoolKeys(pool_id).labels)

    outcomes = Counter((c["phase"], c["status"] if c["status"] else c["error"]) for c in calls)
    twice = [i for i, n in Counter(i for e in log for i in e["ids"]).items() if n > 1]
    unacked_but_recorded = [c for c in calls if c["status"] != 202 and c["id"] in labels]
    print(
        f"\n{len(calls)} teach calls: {dict(sorted(outcomes.items(), key=str))}; "
        f"{len(ok)} acknowledged, {len(labels)} labels recorded, {len(unacked_but_recorded)} recorded "
        f"without a 202, {len(twice)} ids logged twice: {twice[:5]}; workers alive: "
        f"{[w.poll() is None for w in stack.workers]}"
    )


class WorkerQuit(AssertionError):
    """A `sieve worker` process exited because Redis went away for a while."""


WORKER_GIVE_UP_S = 30.0
"""Redis stays down until the busy worker exits, or this long: more than the rest of the retrain plus the
four redis-py retry rounds (each up to ~5 s) that a failing job and RQ's failure handling go through."""


def test_a_worker_busy_when_redis_dies_retrains_the_pool_once_redis_is_back(make_stack):
    stack = make_stack(job_retries=1)
    stack.start_redis(appendfsync="always")
    worker = stack.start_worker()
    stack.start_api()
    pool_id, taught = make_slow_pool(stack.api_url)
    watch = Watch(stack.api_url, pool_id)
    wait_until(watch.ranked, 30, "the cold-start ranking")
    teach(stack.api_url, pool_id, taught)
    wait_until(lambda: watch.status()["retrain"]["running"], 20, "the retrain to start", interval=0.02)

    stack.kill_redis()
    try:
        wait_until(lambda: worker.poll() is not None, WORKER_GIVE_UP_S, "the worker to give up", interval=0.2)
    except TimeoutError:
        pass
    stack.start_redis(appendfsync="always")
    restarted_at = time.monotonic()
    if worker.poll() is not None:
        log = (stack.root / "worker0.log").read_text().splitlines()
        said = [line for line in log if " rq.worker " in line][-2:] + log[-1:]
        raise WorkerQuit(f"the worker exited with status {worker.returncode} while Redis was down: {said}")

    final = watch.wait_up_to_date(30 - (time.monotonic() - restarted_at))
    if final is None:
        raise RetrainLost(f"30 s after Redis came back the pool is still behind its labels: {watch.status()}")
    watch.assert_model_version_never_went_back()
    assert final["n_labeled"] == len(taught) and worker.poll() is None
