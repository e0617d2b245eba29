"""How fast `sieve load` streams a Parquet file into a new pool, and how fast a rerun skips it all.

Writes a Parquet file of `--items` rows of `--dim` float32 features (random, with ids `i0`, `i1`...),
starts its own stack (embedded Redis, one worker, the API with `--api-processes` processes), and runs
`sieve load --name` as a user would, in a process of its own; then runs it again, which finds the pool,
looks up every batch's ids and sends nothing. Prints both times and items per second, and how busy the
machine's CPUs were before starting (other work on it slows both).

    python bench/load_file.py [--items 200000] [--dim 64] [--api-processes 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Stack, run  # noqa: E402


def write_file(path: Path, n: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("features", pa.list_(pa.float32(), dim))])) as out:
        for start in range(0, n, 50_000):
            rows = rng.normal(size=(min(50_000, n - start), dim)).astype(np.float32)
            features = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), dim)
            ids = pa.array([f"i{i}" for i in range(start, start + len(rows))])
            out.write_table(pa.table({"id": ids, "features": features}))


def timed_load(url: str, path: Path, env: dict) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sieve.cli", "load", "--url", url, "--name", "bench", "--quiet", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.monotonic() - started, done.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--api-processes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sieve-load-") as folder:
        path = Path(folder) / "items.parquet"
        write_file(path, args.items, args.dim)
        size = path.stat().st_size / 2**20
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{args.items} items x {args.dim} float32 features: {size:.1f} MiB of Parquet; load average {load}")
        with Stack(api_processes=args.api_processes, workers=1) as stack:
            env = dict(os.environ)
            for run_name in ("first load", "rerun (every id looked up, nothing sent)"):
                seconds, said = timed_load(stack.api_url, path, env)
                print(f"{run_name}: {seconds:.1f} s, {args.items / seconds:,.0f} items/s  [{said}]")
    return 0


if __name__ == "__main__":
    run(main)
