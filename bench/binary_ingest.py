"""One create call per body format: its seconds, items per second, and the API's peak RSS growth against the
body's size.

Cases: --items x --features rows (default 100,000 x 64) as an Arrow IPC stream, a Parquet file, a .npy
matrix in a multipart form, and as JSON (four decimals, as bench/_stack.py uploads); then one Arrow call of
--big-items x --big-features (default 100,000 x 384, a 150 MB body) under a body limit raised to fit it.
Growth is the largest of the API's gunicorn processes' peak RSS (VmHWM, reset before each call) minus their
RSS before it.

    python bench/binary_ingest.py
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import Stack, api_processes, feature_table, peak_rss_growth_mb  # noqa: E402

MB = 1024 * 1024


def arrow_body(ids, X) -> bytes:
    table = feature_table(ids, X)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=10_000)
    return sink.getvalue()


def parquet_body(ids, X) -> bytes:
    sink = io.BytesIO()
    pq.write_table(feature_table(ids, X), sink, row_group_size=10_000)
    return sink.getvalue()


def npy_form(ids, X) -> dict:
    sink = io.BytesIO()
    np.save(sink, X)
    return {"features": ("x.npy", sink.getvalue()), "ids": ("ids.json", json.dumps(ids))}


def json_body(ids, X) -> bytes:
    items = [{"id": i, "features": row} for i, row in zip(ids, np.round(X.astype(np.float64), 4).tolist())]
    return json.dumps({"items": items}, separators=(",", ":")).encode()


def _request(name: str, ids, X) -> tuple[bytes, dict]:
    """The body of one format (its features' file for npy), and the keyword arguments that send it."""
    if name == "npy":
        form = npy_form(ids, X)
        return form["features"][1], {"files": form}
    body = {"arrow": arrow_body, "parquet": parquet_body, "json": json_body}[name](ids, X)
    return body, {"data": body, "headers": {"Content-Type": CONTENT_TYPES[name]}}


CONTENT_TYPES = {
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
}


def measure(session, url: str, pids: list[int], request: dict) -> tuple[float, float, int]:
    def call():
        started = time.perf_counter()
        answer = session.post(url, **request)
        return time.perf_counter() - started, answer

    growth, (seconds, answer) = peak_rss_growth_mb(pids, call)
    if answer.status_code != 201:
        raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
    return seconds, growth, answer.json()["n_items"]


def run(n: int, dim: int, formats: list[str], body_limit: int | None) -> list[tuple]:
    rng = np.random.default_rng(0)
    X, ids = rng.normal(size=(n, dim)).astype(np.float32), [f"i{i}" for i in range(n)]
    env = {"SIEVE_MAX_BODY_BYTES": str(body_limit)} if body_limit else None
    rows = []
    with Stack(workers=0, extra_env=env) as stack:
        pids = api_processes(stack)
        session, url = stack.client(timeout=600).session, stack.api_url + "/v1/pools"
        for name in formats:
            body, request = _request(name, ids, X)
            seconds, growth, stored = measure(session, url, pids, request)
            assert stored == n
            rows.append((f"{name} {n:,} x {dim}", len(body) / MB, seconds, n / seconds, growth))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--big-items", type=int, default=100_000)
    parser.add_argument("--big-features", type=int, default=384)
    args = parser.parse_args()
    rows = run(args.items, args.features, ["arrow", "parquet", "npy", "json"], None)
    big_body = args.big_items * args.big_features * 4
    rows += run(args.big_items, args.big_features, ["arrow"], 2 * big_body)
    print(f"{'case':28} {'body MB':>8} {'seconds':>8} {'items/s':>9} {'peak RSS growth MB':>19} {'x body':>7}")
    for case, body_mb, seconds, rate, growth in rows:
        print(f"{case:28} {body_mb:8.1f} {seconds:8.2f} {rate:9.0f} {growth:19.0f} {growth / body_mb:7.2f}")


if __name__ == "__main__":
    main()
