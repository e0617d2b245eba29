"""The API (gunicorn master and workers) SIGKILLed in the middle of teach calls of several labels each:
every call is recorded whole or not at all, and every acknowledged call is recorded."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from tests.fault.conftest import label_log, labeled_bits, labels_by_id, make_random_pool, pool_meta, teach_through

N_ITEMS, N_CLIENTS, IDS_PER_CALL = 40_000, 8, 5
CLASSES = ["a", "b", "c"]


def label_of(item_id: str) -> str:
    return CLASSES[int(item_id[1:]) * 7 % 3]


class BatchTeacher(threading.Thread):
    """A labeling client sending IDS_PER_CALL fresh labels per teach call. A batch whose call failed is
    not resent (its fate is what the test checks), so every log entry traces back to one call made here."""

    def __init__(self, url: str, pool_id: str, ids: list[str], clock):
        super().__init__(daemon=True)
        self.url, self.pool_id, self.ids, self.clock = url, pool_id, ids, clock
        self.stop = threading.Event()
        self.calls: list[dict] = []

    def run(self):
        session = requests.Session()
        for start in range(0, len(self.ids) - IDS_PER_CALL + 1, IDS_PER_CALL):
            if self.stop.is_set():
                break
            ids = self.ids[start : start + IDS_PER_CALL]
            call = {"ids": tuple(ids), "labels": tuple(label_of(i) for i in ids), "phase": self.clock()}
            try:
                answer = session.post(
                    f"{self.url}/v1/pools/{self.pool_id}/teach",
                    timeout=30,
                    json={"labels": [{"id": i, "label": label} for i, label in zip(call["ids"], call["labels"])]},
                )
                call.update(status=answer.status_code, body=answer.json() if answer.content else None)
            except requests.RequestException as error:
                call.update(status=None, error=type(error).__name__)
            self.calls.append(call)
            if call["status"] is None:
                session.close()
                session = requests.Session()
                self._wait_for_the_api()
        session.close()

    def _wait_for_the_api(self):
        """Backs off until the API answers again, without spending a batch of ids on every try."""
        while not self.stop.is_set():
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)


def test_an_api_process_killed_during_teach_calls_applies_each_call_whole_or_not_at_all(make_stack):
    stack = make_stack(job_retries=1)
    stack.start_redis()
    stack.start_worker()
    first_api = stack.start_api()
    url = stack.api_url

    pool_id = make_random_pool(url, N_ITEMS, seed=5)

    def kill_the_api(phase):
        stack.kill_api(first_api)
        phase[0] = "down"
        stack.start_api()

    teachers = teach_through(
        kill_the_api, lambda ids, when: BatchTeacher(url, pool_id, ids, when), N_ITEMS, N_CLIENTS, acked_each_side=200
    )
    calls = {c["ids"]: c for t in teachers for c in t.calls}
    assert len(calls) == sum(len(t.calls) for t in teachers)
    cut = [c for c in calls.values() if c["phase"] == "before" and c["status"] is None]
    assert cut, "no call was in flight when the API died; the kill came too late or too early"
    assert all(c["status"] in (202, None) for c in calls.values()), Counter(c["status"] for c in calls.values())

    redis = stack.redis()
    log = label_log(redis, pool_id)
    labels = labels_by_id(redis, pool_id)
    bits = labeled_bits(redis, pool_id)
    meta = pool_meta(redis, pool_id)

    # Each log entry is one whole call: exactly its ids with exactly its labels, and no call twice.
    in_log = Counter()
    for entry in log:
        call = calls.get(tuple(entry["ids"]))
        assert call is not None, f"a log entry matches no call made: {entry}"
        assert tuple(entry["labels"]) == call["labels"], (entry, call)
        in_log[call["ids"]] += 1
    assert max(in_log.values()) == 1, [ids for ids, n in in_log.items() if n > 1]
    # The labels hash and the bitmap agree with the log, call by call: all of a call's ids or none.
    for ids, call in calls.items():
        recorded = [i in labels for i in ids]
        assert all(recorded) or not any(recorded), f"call half applied: {call}, recorded {recorded}"
        assert all(recorded) == (ids in in_log), f"labels hash and log disagree on {call}"
        assert all((i in bits) == (i in labels) for i in ids), f"bitmap disagrees on {call}"
        if all(recorded):
            assert tuple(labels[i] for i in ids) == call["labels"], call
    # Every acknowledged call is there, under the labels_version its answer named.
    version_of = {tuple(e["ids"]): e["labels_version"] for e in log}
    lost = [c for c in calls.values() if c["status"] == 202 and version_of.get(c["ids"]) != c["body"]["labels_version"]]
    assert lost == [], f"{len(lost)} acknowledged calls are missing or under another version, e.g. {lost[:3]}"
    assert [e["labels_version"] for e in log] == list(range(1, int(meta["labels_version"]) + 1))
    status = requests.get(f"{url}/v1/pools/{pool_id}", timeout=30).json()
    assert status["n_labeled"] == len(labels) == IDS_PER_CALL * len(log)
    assert sum(status["classes_seen"].values()) == len(labels)

    applied_unacked = [c for c in cut if c["ids"] in in_log]
    print(
        f"\n{len(calls)} teach calls, {sum(c['status'] == 202 for c in calls.values())} acknowledged, "
        f"{len(cut)} cut by the kill ({len(applied_unacked)} of them applied), {len(log)} in the log; "
        f"retrain {status['retrain']}, version {status['version']}, ranked_version {status['ranked_version']}"
    )
