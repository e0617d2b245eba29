"""How long one tenant's teach takes to show while another tenant's backlog of heavy refreshes is queued.

Starts its own stack (embedded Redis, two workers, the API) and creates API keys for two tenants. Tenant
`light` owns one small pool; tenant `heavy` owns `--heavy-pools` pools of 3,000 items x 16 features with
`--labels` noisy labels each and a random forest of `--trees` trees, each split weighing as many of the 16
features as the model bounds allow, so that each of its refreshes takes seconds. Measured: seconds from
the light tenant's teach 202 until its pool's model reflects that teach,
first with the workers idle, then right after the heavy tenant created its pools (every pool's first
refresh queued at once), and how long the heavy backlog took to drain.

    python bench/fairness.py [--heavy-pools 20] [--trees 50] [--labels 2000]

Run it with PYTHONPATH pointing at another checkout to measure that one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Client, Stack, run, stop_on_sigterm  # noqa: E402

POLL_SECONDS = 0.02
SPLIT_FEATURES = 800
"""Most trees x features weighed per split that a forest may ask for (sieve.limits, not imported so that
another checkout can be measured)."""


def tenant_client(stack: Stack, tenant: str) -> Client:
    made = subprocess.run(
        [sys.executable, "-m", "sieve.cli", "keys", "create", "--tenant", tenant],
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return stack.client(timeout=300, api_key=made.stdout.strip().rsplit(" ", 1)[-1])


def heavy_pool(client: Client, seed: int, n_labels: int, trees: int) -> str:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 16)).round(4)
    y = np.where(X[:, 0] + X[:, 1] + rng.normal(scale=1.5, size=len(X)) > 0, "pos", "neg")
    return client.create_pool(
        [{"id": f"i{i}", "features": row} for i, row in enumerate(X.tolist())],
        [(f"i{i}", str(y[i])) for i in range(n_labels)],
        model={
            "type": "random_forest",
            "params": {
                "n_estimators": trees,
                "criterion": "log_loss",
                "max_features": min(16, SPLIT_FEATURES // trees),
            },
        },
        random_state=seed,
    )["pool_id"]


def reflected_after(client: Client, pool_id: str, item: int) -> float:
    """Teaches one label and times the 202 until the pool's model was trained on it."""
    taught = client.teach(pool_id, [(f"i{item}", "a" if item % 2 else "b")])
    start = time.perf_counter()
    client.wait_for_model(pool_id, taught["labels_version"], timeout=600, interval=POLL_SECONDS)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heavy-pools", type=int, default=20)
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--labels", type=int, default=2000)
    args = parser.parse_args()
    with stop_on_sigterm(), Stack(workers=2) as stack:
        heavy, light = tenant_client(stack, "heavy"), tenant_client(stack, "light")
        time.sleep(1.1)  # each API process re-reads whether keys are required once a second
        rng = np.random.default_rng(0)
        X = rng.normal(size=(500, 8)).round(4)
        small = light.create_pool(
            [{"id": f"i{i}", "features": row} for i, row in enumerate(X.tolist())],
            [(f"i{i}", "a" if i % 2 else "b") for i in range(20)],
        )["pool_id"]
        light.wait_idle(small, timeout=600, raise_on_error=True)
        idle = [reflected_after(light, small, 20 + i) for i in range(3)]

        began = time.perf_counter()
        backlog = [heavy_pool(heavy, seed, args.labels, args.trees) for seed in range(args.heavy_pools)]
        queued_s = time.perf_counter() - began
        busy = reflected_after(light, small, 30)
        for pool in backlog:
            heavy.wait_idle(pool, timeout=600, raise_on_error=True)
        drained = time.perf_counter() - began
        print(f"light tenant's teach reflected after, idle workers: median {np.median(idle):.2f} s (of {len(idle)})")
        print(
            f"... with {args.heavy_pools} heavy refreshes queued ({args.trees} trees, {args.labels} labels; "
            f"created in {queued_s:.1f} s): {busy:.2f} s"
        )
        print(f"heavy backlog drained {drained:.1f} s after its first pool was created")
    return 0


if __name__ == "__main__":
    run(main)
