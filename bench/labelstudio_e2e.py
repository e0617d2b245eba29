"""The live loop against a real Label Studio: its next-task queue follows Sieve's ranking after each retrain.

Starts a Sieve stack (embedded Redis, two workers, the API) and a real Label Studio from its own virtualenv
(on 127.0.0.1, a throw-away data folder, analytics and version checks off, ML_BLOCK_LOCAL_IP=false and
SSRF_PROTECTION_ENABLED=false so that it may call a backend on this machine). Then, through Label Studio's
REST API: creates a classification project with uncertainty sampling (a <Text> one, or with `--project image`
an <Image> one whose tasks carry `data.embedding`, as docs/labelstudio.md's recipe has it), imports tasks, connects
Sieve as its ML backend, and for `--rounds` rounds asks `GET /api/projects/{id}/next` for the next task, checks it is
the one Sieve ranks most informative (`GET /v1/pools/{pool}/query?k=1`), and annotates it. Before each ask
it waits for the last retrain to be pushed: the project's model_version is Sieve's newest. Then it deletes
an annotation and a task in Label Studio, and checks the queue once more after each. Then it stops Sieve,
makes 3 annotations, changes one and deletes one in Label Studio, starts Sieve again and measures the seconds
until Sieve's labels equal Label Studio's (and checks the queue); and last deletes every prediction and
presses Start Training (`POST /api/ml/{id}/train`), measuring the seconds until the predictions are back.
At the end it prints the project's predictions (all model versions) against its unlabeled tasks.

Label Studio is not a dependency of Sieve: install it in a virtualenv of its own, then point this at it:

    python -m venv /tmp/ls-venv && /tmp/ls-venv/bin/pip install label-studio==1.23.2
    python bench/labelstudio_e2e.py --venv /tmp/ls-venv [--project text|image] [--tasks 60] [--rounds 12]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from redis import Redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Stack, report, run  # noqa: E402

from sieve.embedded import free_port  # noqa: E402
from sieve.storage.keys import PoolKeys  # noqa: E402

TEXT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
</View>"""
IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="label" toName="image" choice="single">
    <Choice value="Cat"/><Choice value="Dog"/><Choice value="Bird"/>
  </Choices>
</View>"""
POSITIVE = ["great", "love", "excellent", "wonderful", "superb", "delightful", "fine", "happy"]
NEGATIVE = ["awful", "hate", "terrible", "dreadful", "broken", "boring", "poor", "sad"]
NEUTRAL = ["the", "product", "arrived", "today", "box", "service", "price", "colour", "size", "week"]


def synthetic_tasks(n: int, seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """Texts that mix positive and negative words in varying proportions, and their majority label."""
    rng = np.random.default_rng(seed)
    tasks, truth = [], {}
    for i in range(n):
        share = rng.uniform(0.1, 0.9)
        words = [rng.choice(POSITIVE) if rng.random() < share else rng.choice(NEGATIVE) for _ in range(5)]
        words += list(rng.choice(NEUTRAL, size=4)) + [f"w{i}"]
        rng.shuffle(words)
        text = " ".join(words)
        tasks.append({"data": {"text": text}})
        truth[text] = "Positive" if sum(w in POSITIVE for w in words) >= 3 else "Negative"
    return tasks, truth


@dataclass
class Project:
    """What a kind of project brings: its label config, its tasks, and each task's true class."""

    label_config: str
    from_name: str
    to_name: str
    classes: list[str]
    tasks: list[dict]
    truth: dict[str, str]  # a task's `data[to_name]` (its text, or its image's URL) -> its class

    def label_of(self, task: dict) -> str:
        return self.truth[task["data"][self.to_name]]

    def choice(self, label: str) -> list[dict]:
        return [
            {"from_name": self.from_name, "to_name": self.to_name, "type": "choices", "value": {"choices": [label]}}
        ]


def text_project(n: int) -> Project:
    tasks, truth = synthetic_tasks(n)
    return Project(TEXT_CONFIG, "sentiment", "text", ["Positive", "Negative"], tasks, truth)


def image_project(n: int, seed: int = 0) -> Project:
    """Image tasks as docs/labelstudio.md's recipe has them: a URL (never loaded here) and the image's embedding in
    `data.embedding`, here vectors of three separable classes standing for an encoder's output."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n, n_features=32, n_informative=8, n_redundant=4, n_classes=3, class_sep=1.5, random_state=seed
    )
    classes = ["Cat", "Dog", "Bird"]
    tasks, truth = [], {}
    for i, (vector, cls) in enumerate(zip(np.round(X, 4).tolist(), y)):
        url = f"https://example.org/images/{i:05d}.jpg"
        tasks.append({"data": {"image": url, "embedding": vector}})
        truth[url] = classes[cls]
    return Project(IMAGE_CONFIG, "label", "image", classes, tasks, truth)


PROJECTS = {"text": text_project, "image": image_project}


class LabelStudio:
    """A real Label Studio process in its own session, and a client of its REST API."""

    def __init__(self, venv: Path, port: int, token: str):
        self.venv, self.port, self.token = venv, port, token
        self.url = f"http://127.0.0.1:{port}"
        self.data = Path(tempfile.mkdtemp(prefix="sieve-ls-e2e-"))
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def __enter__(self) -> LabelStudio:
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data),
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "PYTHONPATH": "",
        }
        log = open(self.data / "label-studio.log", "w")
        self.process = subprocess.Popen(
            [
                str(self.venv / "bin" / "label-studio"),
                "start",
                "--no-browser",
                "--host",
                "127.0.0.1",
                "--internal-host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data),
                "--username",
                "e2e@example.com",
                "--password",
                secrets.token_hex(8),
                "--user-token",
                self.token,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Label Studio exited while starting:\n{self.log_tail()}")
            try:
                if self.session.get(f"{self.url}/api/projects/", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Label Studio did not answer in time:\n{self.log_tail()}")
            time.sleep(1)

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.data, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        path = self.data / "label-studio.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kwargs):
        for _ in range(5):
            answer = self.session.request(method, self.url + path, timeout=120, **kwargs)
            if answer.status_code != 500:
                break
            # Label Studio on SQLite answers 500 ("database is locked") to a write that meets another one,
            # such as a Sieve worker's import or deletion of predictions; the write was rolled back.
            time.sleep(1)
        if answer.status_code not in expect:
            raise RuntimeError(f"Label Studio {method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None


def studio_tasks(ls: LabelStudio, pid: int) -> list[dict]:
    """The project's tasks with all their fields (not as Sieve's sync asks for them: this is the reference)."""
    out, page = [], 1
    while True:
        answer = ls.session.get(
            f"{ls.url}/api/tasks/",
            timeout=120,
            params={"project": pid, "fields": "all", "page": page, "page_size": 100},
        )
        if answer.status_code == 404:
            return out
        body = answer.json()
        out += body["tasks"]
        if len(out) >= body["total"]:
            return out
        page += 1


def labeled_annotations(task: dict) -> list[dict]:
    return [a for a in task["annotations"] if not a.get("was_cancelled") and a.get("result")]


def studio_labels(ls: LabelStudio, pid: int) -> dict[str, str]:
    """Each task's label in Label Studio: its latest annotation's choice."""
    out = {}
    for task in studio_tasks(ls, pid):
        labeled = labeled_annotations(task)
        if labeled:
            out[str(task["id"])] = max(labeled, key=lambda a: a["id"])["result"][0]["value"]["choices"][0]
    return out


def sieve_labels(redis: Redis, pool_id: str) -> dict[str, str]:
    """Sieve's labels of the pool's items, read from its Redis."""
    rows = {row: item for item, row in redis.hgetall(PoolKeys(pool_id).rows).items()}
    return {rows[row].decode(): json.loads(label) for row, label in redis.hgetall(PoolKeys(pool_id).labels).items()}


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--venv",
        type=Path,
        default=os.environ.get("SIEVE_LABELSTUDIO_VENV"),
        help="the virtualenv holding label-studio (or SIEVE_LABELSTUDIO_VENV)",
    )
    parser.add_argument(
        "--project",
        choices=sorted(PROJECTS),
        default="text",
        help="text (default): a <Text> project; image: an <Image> project whose tasks carry data.embedding",
    )
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    if not args.venv or not (args.venv / "bin" / "label-studio").exists():
        parser.error("--venv must point at a virtualenv with label-studio installed")
    kind = PROJECTS[args.project](args.tasks)
    token = secrets.token_hex(20)
    matches, rounds_seen, lags = [], [], []
    print("starting Sieve and Label Studio (Label Studio's first start migrates its database: a minute or two)")
    port = free_port()
    # The hostname Label Studio sends with /setup: http://localhost:<port>, or its HOST.
    origins = f"http://localhost:{port},http://127.0.0.1:{port}"
    with (
        Stack(workers=2, extra_env={"SIEVE_LABELSTUDIO_ORIGINS": origins}) as stack,
        LabelStudio(args.venv, port, token) as ls,
    ):
        sieve = stack.client(timeout=300)
        project = ls.call(
            "POST",
            "/api/projects/",
            json={
                "title": f"Sieve e2e ({args.project})",
                "label_config": kind.label_config,
                "sampling": "Uncertainty sampling",
            },
        )
        pid = project["id"]
        ls.call("POST", f"/api/projects/{pid}/import", json=kind.tasks)
        backend = ls.call(
            "POST",
            "/api/ml/",
            json={"url": f"{stack.base_url}/labelstudio", "project": pid, "title": "Sieve", "is_interactive": False},
        )
        pool = wait_for(
            lambda: next((p for p in sieve.list_pools()["pools"] if p["n_items"] == args.tasks), None),
            120,
            "Sieve to read the tasks",
        )
        pool_id = pool["pool_id"]
        pool_kind = "text" if pool["featurizer"] else f"vectors of {pool['dimension']}"
        print(
            f"Label Studio {args.project} project {pid} is served by Sieve pool {pool_id} "
            f"({pool['n_items']} tasks, {pool_kind})"
        )
        deleted: set[str] = set()
        annotations: list[int] = []

        def one_round(round_no: int, note: str = "") -> None:
            status = sieve.wait_idle(pool_id, timeout=600, raise_on_error=True)
            version = f"sieve-{pool_id[:8]}-{status['ranked_version']}"
            started = time.monotonic()
            wait_for(
                lambda: ls.call("GET", f"/api/projects/{pid}/")["model_version"] == version,
                120,
                f"Label Studio to follow {version}",
            )
            lags.append(time.monotonic() - started)
            ranked = sieve.query(pool_id, k=20, lease_seconds=0)["items"]
            top = next(item["id"] for item in ranked if item["id"] not in deleted)
            task = ls.call("GET", f"/api/projects/{pid}/next")
            same = str(task["id"]) == top
            matches.append(same)
            rounds_seen.append(status["cold_start"])
            label = kind.label_of(task)
            print(
                f"round {round_no}{note}: {version} ({'cold start' if status['cold_start'] else 'model'}), Label "
                f"Studio hands out task {task['id']}, Sieve's most informative is {top}: "
                f"{'same' if same else 'DIFFERENT'}; annotated {label}"
            )
            before = sieve.status(pool_id)["labels_version"]
            made = ls.call("POST", f"/api/tasks/{task['id']}/annotations/", json={"result": kind.choice(label)})
            annotations.append(made["id"])
            wait_for(
                lambda: sieve.status(pool_id)["labels_version"] > before, 30, "the annotation's webhook to reach Sieve"
            )

        for round_no in range(1, args.rounds + 1):
            one_round(round_no)
        # An annotation deleted in Label Studio: its task is unlabeled in Sieve too, and ranked again.
        labeled_before = sieve.wait_idle(pool_id, timeout=600, raise_on_error=True)["n_labeled"]
        ls.call("DELETE", f"/api/annotations/{annotations[-1]}/", expect=(200, 204))
        unlabeled = wait_for(
            lambda: sieve.status(pool_id)["n_labeled"] == labeled_before - 1, 30, "the deletion to reach Sieve"
        )
        one_round(args.rounds + 1, " (after deleting an annotation)")
        # A task deleted in Label Studio: no more predictions for it, and the queue goes on.
        doomed = sieve.query(pool_id, k=1, lease_seconds=0)["items"][0]["id"]
        ls.call("DELETE", f"/api/tasks/{doomed}/", expect=(200, 204))
        deleted.add(doomed)
        one_round(args.rounds + 2, f" (after deleting task {doomed}, Sieve's top)")
        # Sieve down: Label Studio takes annotations, a change and a deletion, and never resends their webhooks.
        sieve.wait_idle(pool_id, timeout=600, raise_on_error=True)
        stack.stop_sieve()
        fresh = [t for t in studio_tasks(ls, pid) if not labeled_annotations(t)][:3]
        for task in fresh:
            made = ls.call(
                "POST", f"/api/tasks/{task['id']}/annotations/", json={"result": kind.choice(kind.label_of(task))}
            )
            annotations.append(made["id"])
        changed = annotations[0]
        old = ls.call("GET", f"/api/annotations/{changed}/")["result"][0]["value"]["choices"][0]
        other = kind.classes[(kind.classes.index(old) + 1) % len(kind.classes)]
        ls.call("PATCH", f"/api/annotations/{changed}/", json={"result": kind.choice(other)})
        ls.call("DELETE", f"/api/annotations/{annotations[1]}/", expect=(200, 204))
        started = time.monotonic()
        stack.start_sieve()
        ready = time.monotonic() - started
        redis = Redis.from_url(stack.redis_url)
        wait_for(
            lambda: sieve_labels(redis, pool_id) == studio_labels(ls, pid),
            120,
            "Sieve's labels to equal Label Studio's after the outage",
        )
        recovered = time.monotonic() - started
        print(
            f"after the outage (3 annotations, 1 change, 1 deletion made while Sieve was down): Sieve "
            f"answered after {ready:.1f} s, its labels equalled Label Studio's after {recovered:.1f} s"
        )
        outage_round = len(matches)
        one_round(args.rounds + 3, " (after the outage)")
        # Start Training with every prediction deleted: the predictions come back.
        status = sieve.wait_idle(pool_id, timeout=600, raise_on_error=True)
        version = f"sieve-{pool_id[:8]}-{status['ranked_version']}"
        for old_version in ls.call("GET", f"/api/projects/{pid}/model-versions"):
            ls.call(
                "DELETE", f"/api/projects/{pid}/model-versions", json={"model_version": old_version}, expect=(200, 204)
            )
        assert not ls.call("GET", f"/api/projects/{pid}/model-versions")
        started = time.monotonic()
        ls.call("POST", f"/api/ml/{backend['id']}/train", json={})
        repushed_count = wait_for(
            lambda: ls.call("GET", f"/api/projects/{pid}/model-versions").get(version),
            120,
            "Start Training's predictions",
        )
        repushed = time.monotonic() - started
        print(
            f"Start Training with no predictions left: {repushed_count} predictions of {version} "
            f"back after {repushed:.1f} s"
        )
        final = sieve.wait_idle(pool_id, timeout=600, raise_on_error=True)
        # What Label Studio keeps once the last push is done: its predictions, against its unlabeled tasks.
        current = f"sieve-{pool_id[:8]}-{final['ranked_version']}"
        wait_for(
            lambda: ls.call("GET", f"/api/projects/{pid}/")["model_version"] == current,
            120,
            f"Label Studio to follow {current}",
        )
        try:
            versions = wait_for(
                lambda: (lambda v: v if set(v) == {current} else None)(
                    ls.call("GET", f"/api/projects/{pid}/model-versions/")
                ),
                60,
                "the older versions to be deleted",
            )
        except RuntimeError:
            versions = ls.call("GET", f"/api/projects/{pid}/model-versions/")
        counts = ls.call("GET", f"/api/projects/{pid}/")
        unlabeled_tasks = counts["task_number"] - counts["num_tasks_with_annotations"]
        predictions = sum(versions.values())
    print(
        f"labels taught: {final['n_labeled']}; model rounds: {rounds_seen.count(False)}; "
        f"push lag after a retrain (until Label Studio's project follows): median {np.median(lags):.2f} s"
    )
    print(
        f"after {len(matches)} rounds Label Studio holds {predictions} predictions in {len(versions)} model "
        f"version(s) for {unlabeled_tasks} unlabeled tasks of {counts['task_number']}: "
        f"{predictions / max(unlabeled_tasks, 1):.2f} per unlabeled task"
    )
    dimension = len(kind.tasks[0]["data"].get("embedding", ()))
    return report(
        [
            (
                f"Sieve made a {'text pool' if not dimension else f'pool of {dimension}-vectors'} for the project",
                pool_kind == ("text" if not dimension else f"vectors of {dimension}"),
            ),
            (
                f"GET /next handed out Sieve's most informative task in every round ({sum(matches)}/{len(matches)})",
                all(matches),
            ),
            ("the loop ran on a trained model, not only in cold start", rounds_seen.count(False) > 0),
            ("deleting an annotation in Label Studio removed the label in Sieve", bool(unlabeled)),
            (
                "Label Studio keeps only the current version's predictions, one per unlabeled task",
                set(versions) == {current} and predictions <= unlabeled_tasks,
            ),
            (
                "after an outage Sieve's labels equal Label Studio's, and /next is Sieve's top pick",
                matches[outage_round],
            ),
            ("Start Training with every prediction deleted pushes them again", bool(repushed_count)),
        ]
    )


if __name__ == "__main__":
    run(main)
