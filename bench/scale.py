"""Pools of millions: ingest, first ranking, query latency, freshness, memory and sharded refresh.

For each width in --features (64 and 384 by default) it starts its own stack (embedded Redis in a temp
dir, one worker, the API with 1 gevent process on a free port), writes a synthetic pool of --items rows
(three Gaussian classes) to local files, and measures:

- ingest over HTTP, each into a new pool, in items/s and MB/s of feature data, with the API's peak RSS
  growth beside the largest body it read: JSON (the client's add_items, on a sample of --json-items
  rows); .npy matrices with their ids in multipart forms and Parquet files, sent as bodies of about 24 MB;
  and `sieve load` from an Arrow IPC file (it sends Arrow streams of about 24 MB, whatever file it reads).
  Before these, one such call of each binary format, whose growth is printed apart: what a fresh API
  process loads and keeps once (pyarrow's modules, its allocators' arenas) is not the cost of a body;
- time to the first ranking: from the end of the last load until every item is ranked;
- Redis used_memory per item and the worker's RSS with the pool cached;
- `GET /query?k=10` p50/p99 next to the `/healthz` floor measured on the same connection;
- teach -> fresh: seconds from one label's 202 to the first /query that reflects it (median, p90).

Then, on a --shard-items x 64 pool (2M by default), the time from teach to a fresh ranking with the
refresh unsharded (1 worker), sharded with 1 worker and sharded with 2 workers, and whether the sharded
ranking is the very order of the unsharded one.

    pip install -e '.[bench]'
    python bench/scale.py [--items 1000000] [--features 64,384] [--shard-items 2000000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from urllib3 import encode_multipart_formdata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import (  # noqa: E402
    Client,
    Pool,
    Stack,
    api_processes,
    feature_table,
    first_labels,
    peak_rss_growth_mb,
    percentile,
    pool_bytes,
    report,
    run,
    size_arg,
    status_kb,
    synthetic,
    worker_processes,
)
from freshness import rounds_on  # noqa: E402
from query_latency import measure  # noqa: E402

from sieve.client import ARROW_STREAM  # noqa: E402
from sieve.load import wire  # noqa: E402

MB = 1024 * 1024
N_CLASSES = 3

# Goals on this 2-core machine.
INGEST_GOAL_S = {64: 10.0, 384: 40.0}
QUERY_P50_OVER_FLOOR = 1.5
QUERY_P99_MS = 10.0
FRESH_GOAL_S = {64: 2.0, 384: 4.0}
RSS_OVER_BODY = 2.0


def gaussian_classes(n_items: int, n_features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes whose means lie about two standard deviations apart, as float32, made a block
    at a time: make_classification (bench/_stack.py) would hold 3 GB of float64 at 1M x 384."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n_items)
    centers = rng.normal(size=(N_CLASSES, n_features)) * (2.0 / np.sqrt(n_features))
    X = np.empty((n_items, n_features), dtype=np.float32)
    step = 100_000
    for lo in range(0, n_items, step):
        hi = min(lo + step, n_items)
        X[lo:hi] = rng.standard_normal((hi - lo, n_features), dtype=np.float32) + centers[y[lo:hi]]
    return X, y


def write_arrow_file(X: np.ndarray, ids: list[str], folder: Path) -> Path:
    """The pool as a user would bring it to `sieve load`: an Arrow IPC file."""
    table = feature_table(ids, X)
    path = folder / "pool.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=65_536)
    return path


def ingest_json(client: Client, X: np.ndarray, ids: list[str], n: int) -> float:
    """Seconds to send the first n rows as JSON items (create, then add_items calls of about 25 MB, well
    under the API's 64 MiB body limit at ten characters a number)."""
    batch = max(1, 2_500_000 // X.shape[1])
    started = time.perf_counter()
    pool_id = client.create_pool(name="bench-json")["pool_id"]
    for lo in range(0, n, batch):
        hi = min(lo + batch, n)
        client.add_items(pool_id, [{"id": ids[i], "features": row} for i, row in zip(range(lo, hi), X[lo:hi].tolist())])
    seconds = time.perf_counter() - started
    client.delete_pool(pool_id)
    return seconds


def encode_call(fmt: str, ids: list[str], X: np.ndarray, options: dict | None) -> tuple[bytes, str]:
    """One call's body as `fmt` ("npy": a multipart form; "parquet": a Parquet file), and its Content-Type;
    `options`, a create's fields."""
    sink = io.BytesIO()
    if fmt == "npy":
        np.save(sink, X)
        fields = {"features": ("features.npy", sink.getvalue(), "application/octet-stream"), "ids": json.dumps(ids)}
        if options:
            fields["sieve"] = json.dumps(options)
        return encode_multipart_formdata(fields)
    pq.write_table(feature_table(ids, X, options), sink, row_group_size=max(1, (4 * MB) // (4 * X.shape[1])))
    return sink.getvalue(), "application/vnd.apache.parquet"


def post_bodies(client: Client, fmt: str, X: np.ndarray, ids: list[str], options: dict, call_bytes: int) -> str:
    """Sends the pool as `fmt` bodies of about call_bytes of features: a create, then add-items calls; the pool."""
    step = max(1, call_bytes // (4 * X.shape[1]))
    pool_id = None
    for lo in range(0, len(ids), step):
        content, content_type = encode_call(fmt, ids[lo : lo + step], X[lo : lo + step], None if pool_id else options)
        path = f"/v1/pools/{pool_id}/items" if pool_id else "/v1/pools"
        answer = client.call("POST", path, (201, 202), content=content, content_type=content_type)
        pool_id = pool_id or answer.json()["pool_id"]
    return pool_id


def first_calls(client: Client, api: list[int], X: np.ndarray, ids: list[str], call_bytes: int) -> dict[str, float]:
    """One call of about call_bytes of each binary format into a pool deleted at once, and the API's peak RSS
    growth on each: the first calls of a fresh process also pay for what it loads and keeps once (pyarrow's
    modules, its allocators' arenas), so the loads measured after them show what a body itself costs."""
    rows = max(1, call_bytes // (4 * X.shape[1]))
    X, ids = X[:rows], [f"warm-{item_id}" for item_id in ids[:rows]]
    calls = {fmt: encode_call(fmt, ids, X, {"name": f"warm-{fmt}"}) for fmt in ("npy", "parquet")}
    batch = feature_table(ids, X).combine_chunks().to_batches()[0]
    calls["arrow"] = (wire.body(batch, {"name": "warm-arrow"}), ARROW_STREAM)
    growth = {}
    for fmt, (content, content_type) in calls.items():
        growth[fmt], answer = peak_rss_growth_mb(
            api, partial(client.call, "POST", "/v1/pools", 201, content=content, content_type=content_type)
        )
        client.delete_pool(answer.json()["pool_id"])
    return growth


FORMAT_NAMES = {"npy": ".npy (multipart)", "parquet": "Parquet"}


@dataclass
class Ingest:
    fmt: str
    items: int
    seconds: float
    feature_mb: float
    peak_rss_mb: float | None = None
    """The API's peak RSS growth during the load."""
    call_mb: float | None = None
    """The largest body one of its calls sent (about CALL_BYTES, or the whole file when smaller)."""

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.feature_mb / self.seconds


def measure_width(n_items: int, width: int, args) -> dict:
    """Every figure of one width, on a stack of its own."""
    from sieve.load.formats import open_source
    from sieve.load.loader import CALL_BYTES, load

    X, y = gaussian_classes(n_items, width)
    ids = [f"i{i}" for i in range(n_items)]
    out: dict = {"width": width, "items": n_items}
    with tempfile.TemporaryDirectory(prefix="sieve-scale-") as folder:
        arrow_file = write_arrow_file(X, ids, Path(folder))
        with Stack(workers=args.workers) as stack:
            client = stack.client(timeout=600)
            redis = stack.redis()
            api = api_processes(stack)
            n_json = min(args.json_items, n_items)
            seconds = ingest_json(client, X, ids, n_json)
            ingests = [Ingest("JSON", n_json, seconds, n_json * width * 4 / MB)]
            out["first_call_mb"] = first_calls(client, api, X, ids, CALL_BYTES)
            call_mb = min(CALL_BYTES, X.nbytes) / MB
            for fmt in ("npy", "parquet"):
                options = {"name": f"scale-{fmt}", "random_state": 0}
                began = time.perf_counter()
                growth, pool_id = peak_rss_growth_mb(
                    api, lambda fmt=fmt, options=options: post_bodies(client, fmt, X, ids, options, CALL_BYTES)
                )
                seconds = time.perf_counter() - began
                ingests.append(Ingest(FORMAT_NAMES[fmt], n_items, seconds, X.nbytes / MB, growth, call_mb))
                assert client.status(pool_id)["n_items"] == n_items
                client.delete_pool(pool_id)
            source = open_source(arrow_file)
            began = time.perf_counter()
            options = {"name": "scale-arrow", "random_state": 0}
            growth, result = peak_rss_growth_mb(api, lambda: load(client, source, create=options, quiet=True))
            loaded_at = time.perf_counter()
            assert result.sent == n_items, result
            ingests.append(Ingest("arrow (sieve load)", n_items, loaded_at - began, X.nbytes / MB, growth, call_mb))
            kept = result.pool_id
            client.wait_idle(kept, timeout=1200, raise_on_error=True)
            out["first_ranking_s"] = time.perf_counter() - loaded_at
            out["ingest"] = ingests
            out["redis_bytes_per_item"] = pool_bytes(redis, kept) / n_items
            out["redis_used_mb"] = redis.info("memory")["used_memory"] / MB

            labeled = first_labels(y)
            client.teach(kept, [(ids[r], int(y[r])) for r in labeled])
            client.wait_idle(kept, timeout=1200, raise_on_error=True)
            pool = Pool(kept, X, y, ids, labeled)
            urls = {"query": f"{client.url}/v1/pools/{kept}/query"}
            urls.update({floor: client.url + floor for floor in ("/healthz", "/readyz")})
            latencies, _ = measure(client, urls, args.calls)
            out["query_ms"] = {name: (percentile(v, 50), percentile(v, 99)) for name, v in latencies.items()}
            lags, _ = rounds_on(client, pool, args.rounds, f"teach -> fresh at {n_items:,} x {width}")
            out["fresh_s"] = (percentile(lags, 50), percentile(lags, 90))
            workers = worker_processes(stack)
            out["worker_rss_mb"] = max(status_kb(pid, "VmRSS") for pid in workers) / 1024
            out["worker_peak_mb"] = max(status_kb(pid, "VmHWM") for pid in workers) / 1024
            out["load"] = os.getloadavg()[0]
    return out


def print_width(r: dict, workers: int) -> list[tuple[str, bool]]:
    n, d = r["items"], r["width"]
    print(f"\n{n:,} x {d} ({workers} workers, load average {r['load']:.2f} at the end)")
    columns = f"{'items':>10} {'seconds':>8} {'items/s':>9} {'MB/s':>7} {'API peak RSS growth':>20}"
    print(f"  {'ingest over HTTP':<26} {columns}")
    for i in r["ingest"]:
        rss = "" if i.peak_rss_mb is None else f"{i.peak_rss_mb:.0f} MB ({i.peak_rss_mb / i.call_mb:.1f}x a call)"
        print(f"  {i.fmt:<26} {i.items:>10,} {i.seconds:>8.2f} {i.rate:>9,.0f} {i.mb_per_s:>7.1f} {rss:>20}")
    print("  (calls of about 24 MB of features; MB are feature bytes as float32)")
    first = ", ".join(f"{fmt} {mb:.0f} MB" for fmt, mb in r["first_call_mb"].items())
    print(f"  API peak RSS growth on a fresh process's first call of each format, before the loads: {first}")
    print(f"  time to the first ranking after the load: {r['first_ranking_s']:.2f} s")
    q, h = r["query_ms"]["query"], r["query_ms"]["/healthz"]
    print(f"  /query?k=10 p50 {q[0]:.3f} ms, p99 {q[1]:.3f} ms; /healthz p50 {h[0]:.3f} ms (ratio {q[0] / h[0]:.2f})")
    print(f"  /readyz (a PING, then RQ's worker registry) p50 {r['query_ms']['/readyz'][0]:.3f} ms")
    print(f"  teach -> fresh median {r['fresh_s'][0]:.2f} s, p90 {r['fresh_s'][1]:.2f} s")
    print(
        f"  Redis: {r['redis_bytes_per_item']:.0f} bytes per item (the pool's keys), used_memory "
        f"{r['redis_used_mb']:.0f} MB; worker RSS {r['worker_rss_mb']:.0f} MB (peak {r['worker_peak_mb']:.0f} MB)"
    )
    binary = min((i for i in r["ingest"] if i.fmt != "JSON"), key=lambda i: i.seconds)
    json_rate = r["ingest"][0].rate
    verdicts = []
    if d in INGEST_GOAL_S:
        goal = (
            f"{n:,} x {d}: fastest binary ingest ({binary.fmt}) {binary.seconds:.1f} s <= {INGEST_GOAL_S[d]} s",
            binary.seconds <= INGEST_GOAL_S[d],
        )
        verdicts.append(goal)
    verdicts += [
        (
            f"{n:,} x {d}: binary ingest {binary.rate / json_rate:.1f}x JSON's rate >= 10x",
            binary.rate >= 10 * json_rate,
        ),
        (
            f"{n:,} x {d}: /query p50 {q[0]:.3f} ms <= {QUERY_P50_OVER_FLOOR} x /healthz p50 {h[0]:.3f} ms",
            q[0] <= QUERY_P50_OVER_FLOOR * h[0],
        ),
        (f"{n:,} x {d}: /query p99 {q[1]:.3f} ms <= {QUERY_P99_MS} ms", q[1] <= QUERY_P99_MS),
    ]
    if d in FRESH_GOAL_S:
        verdicts.append(
            (
                f"{n:,} x {d}: teach -> fresh median {r['fresh_s'][0]:.2f} s <= {FRESH_GOAL_S[d]} s",
                r["fresh_s"][0] <= FRESH_GOAL_S[d],
            )
        )
    worst = max((i for i in r["ingest"] if i.peak_rss_mb is not None), key=lambda i: i.peak_rss_mb / i.call_mb)
    verdicts.append(
        (
            f"{n:,} x {d}: API peak RSS growth {worst.peak_rss_mb:.0f} MB ({worst.fmt}) < {RSS_OVER_BODY} x "
            f"its largest call {worst.call_mb:.0f} MB",
            worst.peak_rss_mb < RSS_OVER_BODY * worst.call_mb,
        )
    )
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=size_arg, default=1_000_000, help="items per pool (default 1000000)")
    parser.add_argument("--features", default="64,384", help="comma-separated widths (default 64,384)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the stacks (default 2: one per core)")
    parser.add_argument("--json-items", type=size_arg, default=50_000, help="rows sent as JSON (default 50000)")
    parser.add_argument("--calls", type=int, default=1000, help="timed queries (default 1000)")
    parser.add_argument("--rounds", type=int, default=9, help="teach -> fresh rounds (default 9)")
    parser.add_argument("--shard-items", type=int, default=2_000_000, help="rows of the sharded pool; 0: skip")
    parser.add_argument("--shard-rounds", type=int, default=5, help="rounds per sharding setup (default 5)")
    parser.add_argument("--shard-rows", type=int, default=None, help="SIEVE_SHARD_ROWS (default: its default)")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.features.split(",") if w.strip()]

    verdicts = []
    for width in widths:
        result = measure_width(args.items, width, args)
        verdicts += print_width(result, args.workers)
    if args.shard_items:
        verdicts += sharding(args.shard_items, args.shard_rounds, args.shard_rows)
    print()
    return report(verdicts)


def sharding(n_items: int, rounds: int, shard_rows: int | None) -> list[tuple[str, bool]]:
    """Teach -> fresh on an n_items x 64 pool: unsharded on 1 worker, sharded on 1 and on 2 workers."""
    from sharded_refresh import measure as refresh_setup

    from sieve.settings import Settings

    X, y = synthetic(n_items, 64)
    shard_rows = shard_rows or Settings.shard_rows
    setups = [("unsharded, 1 worker", 1, n_items + 1), ("sharded, 1 worker", 1, shard_rows)]
    setups.append(("sharded, 2 workers", 2, shard_rows))
    results = [refresh_setup(label, workers, rows, X, y, rounds) for label, workers, rows in setups]
    print(f"\nrefresh of {n_items:,} x 64 (SIEVE_SHARD_ROWS {shard_rows:,}); median of {rounds} rounds")
    for r in results:
        print(
            f"  {r['label']:<22} teach -> ranking {r['teach_to_ranking_s']:6.2f} s, worker {r['worker_s']:6.2f} s, "
            f"load average {max(r['load']):.1f}"
        )
    one, two = results[1]["teach_to_ranking_s"], results[2]["teach_to_ranking_s"]
    print(f"  sharded 1 worker / 2 workers: {one / two:.2f}x")
    same = len({r["digest"] for r in results}) == 1
    print(f"  rankings: {results[0]['digest']}" + ("" if same else " (NOT the same in every setup)"))
    return [
        (f"{n_items:,} x 64 sharded: 2 workers {one / two:.2f}x faster than 1", two < one),
        ("sharded and unsharded rankings identical (sha256 of every ranking and the probabilities)", same),
    ]


if __name__ == "__main__":
    run(main)
