"""Memory a text pool costs: Redis bytes of its keys and the API's peak RSS growth per request.

Cases: a create of 10,000 short texts at 8,192 columns; a create of about 1.2 MB of text at 8,192
columns; the first retrain of the first pool (20 labels); a /predict of about 50 KB of text (10,000
short texts) on the first pool. Growth is the API's gunicorn processes' peak RSS (the worker's for the
retrain): VmHWM, reset through /proc/<pid>/clear_refs before each step, minus the RSS before it.

    python bench/text_memory.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import Client, Stack, api_processes, peak_rss_growth_mb, pool_bytes  # noqa: E402

WORDS = [f"word{i}" for i in range(5000)]
MB = 1024 * 1024


def _texts(n: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=words)) for _ in range(n)]


def post(client: Client, path: str, body: dict):
    """The answer's status and JSON body, whatever the status: a failed call's memory counts too."""
    answer = client.session.post(
        client.url + path,
        data=json.dumps(body, separators=(",", ":")),
        headers={"Content-Type": "application/json"},
        timeout=600,
    )
    return answer.status_code, answer.json()


def main() -> None:
    with Stack() as stack:
        client = stack.client(timeout=300)
        redis = Redis.from_url(stack.redis_url)
        pids = api_processes(stack)
        rows = []

        short = _texts(10_000, 6, seed=0)
        body = {"items": [{"id": f"s{i}", "text": t} for i, t in enumerate(short)], "featurizer": {"n_features": 8192}}
        growth, (status, answer) = peak_rss_growth_mb(pids, lambda: post(client, "/v1/pools", body))
        pool = answer.get("pool_id")
        rows.append(
            (
                "create: 10,000 short texts, 8192 columns",
                sum(map(len, short)),
                status,
                pool and pool_bytes(redis, pool),
                growth,
            )
        )

        big = _texts(12_000, 12, seed=1)
        body = {"items": [{"id": f"b{i}", "text": t} for i, t in enumerate(big)], "featurizer": {"n_features": 8192}}
        growth, (status, answer) = peak_rss_growth_mb(pids, lambda: post(client, "/v1/pools", body))
        rows.append(
            (
                "create: ~1.2 MB of text, 8192 columns",
                sum(map(len, big)),
                status,
                answer.get("pool_id") and pool_bytes(redis, answer["pool_id"]),
                growth,
            )
        )
        if pool is None:  # the first create failed: predict on a pool of the same texts, added in slices
            pool = client.create_pool(featurizer={"n_features": 8192})["pool_id"]
            for start in range(0, len(short), 1000):
                client.add_items(pool, [{"id": f"s{i}", "text": short[i]} for i in range(start, start + 1000)])

        def retrain():
            client.teach(pool, [(f"s{i}", "ab"[i % 2]) for i in range(20)])
            deadline = time.monotonic() + 300
            while client.status(pool).get("model_version") is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no model within 300 s")
                time.sleep(0.2)

        worker = next(process.pid for name, process in stack.children if name == "worker0")
        growth, _ = peak_rss_growth_mb([worker], retrain)
        rows.append(("retrain of the first pool (the worker's RSS)", None, 200, None, growth))
        texts = [t[:5] for t in _texts(10_000, 1, seed=2)]
        predict = lambda: post(client, f"/v1/pools/{pool}/predict", {"texts": texts})  # noqa: E731
        growth, (status, _) = peak_rss_growth_mb(pids, predict)
        rows.append(("predict: ~50 KB of text (10,000 texts)", sum(map(len, texts)), status, None, growth))

    print(f"{'case':45} {'text MB':>8} {'status':>6} {'Redis MB':>9} {'peak RSS growth MB':>19}")
    for case, text_bytes, status, redis_bytes, growth in rows:
        text = "-" if text_bytes is None else f"{text_bytes / MB:.2f}"
        shown = "-" if redis_bytes is None else f"{redis_bytes / MB:.1f}"
        print(f"{case:45} {text:>8} {status:>6} {shown:>9} {growth:19.0f}")


if __name__ == "__main__":
    main()
