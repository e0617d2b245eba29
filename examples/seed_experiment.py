"""The seed experiment against a running Sieve: the README's walkthrough, as a script.

python examples/seed_experiment.py parquet seed.parquet  # the 800 items, 40 labeled, for `sieve load`
python examples/seed_experiment.py pool > pool.json      # the create-pool body: 800 items, 40 labels
python examples/seed_experiment.py labels x12 x400 ...    # a teach body with the true labels of ids
python examples/seed_experiment.py run --url http://127.0.0.1:8000   # 11 rounds, accuracy per round
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

from sieve.seed_experiment import seed_split


def pool_body() -> dict:
    X_lab, y_lab, X_unl, y_unl, _, _ = seed_split()
    X = np.vstack([X_lab, X_unl])
    return {
        "name": "seed experiment",
        "items": [{"id": f"x{i}", "features": row.tolist()} for i, row in enumerate(X)],
        "labels": [{"id": f"x{i}", "label": int(label)} for i, label in enumerate(y_lab)],
        "model": {"type": "logistic_regression", "params": {}},
    }


def write_parquet(path: str) -> None:
    """The pool's items as `sieve load` reads them: `id`, `features`, and `label` (empty for unlabeled items)."""
    body = pool_body()
    labels = {entry["id"]: entry["label"] for entry in body["labels"]}
    ids = [item["id"] for item in body["items"]]
    table = pa.table(
        {
            "id": ids,
            "features": pa.array([item["features"] for item in body["items"]], pa.list_(pa.float32())),
            "label": pa.array([labels.get(i) for i in ids], pa.int64()),
        }
    )
    pq.write_table(table, path)


def truth() -> np.ndarray:
    _, y_lab, _, y_unl, _, _ = seed_split()
    return np.concatenate([y_lab, y_unl])


def call(method: str, url: str, body: dict | None = None, **params) -> dict:
    """One JSON request with the standard library; raises on any non-2xx answer."""
    if params:
        url += "?" + urllib.parse.urlencode(params)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")  # a 204 has no body


def run(url: str, rounds: int, k: int) -> None:
    X_lab, y_lab, X_unl, y_unl, X_test, y_test = seed_split()
    X, y = np.vstack([X_lab, X_unl]), truth()
    pool = call("POST", f"{url}/v1/pools", pool_body())["pool_id"]
    labeled = list(range(len(y_lab)))
    print(f"pool {pool}\nround  labels  Sieve accuracy  in-process accuracy  same picks")
    try:
        for round_ in range(rounds):
            answer = call("GET", f"{url}/v1/pools/{pool}/query", k=k, strategy="least_confidence", wait=30)
            picked = [int(item["id"][1:]) for item in answer["items"]]
            model = LogisticRegression().fit(X[labeled], y[labeled])
            rest = np.setdiff1d(np.arange(len(X)), labeled)
            expected = rest[np.argsort(1 - model.predict_proba(X[rest]).max(axis=1))[-k:]]
            predicted = call("POST", f"{url}/v1/pools/{pool}/predict", {"features": X_test.tolist()})["predictions"]
            accuracy = np.mean([p["predicted_label"] for p in predicted] == y_test)
            print(
                f"{round_:5d}  {len(labeled):6d}  {accuracy:14.3f}  {model.score(X_test, y_test):19.3f}  "
                f"{sorted(picked) == sorted(expected.tolist())}"
            )
            call(
                "POST",
                f"{url}/v1/pools/{pool}/teach",
                {"labels": [{"id": f"x{i}", "label": int(y[i])} for i in picked]},
            )
            labeled += picked
    finally:
        # The pool exists only for this run; leave nothing behind, whether it ended or failed.
        call("DELETE", f"{url}/v1/pools/{pool}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("pool", help="print the create-pool body")
    parquet = commands.add_parser("parquet", help="write the pool's items and initial labels to a Parquet file")
    parquet.add_argument("path")
    labels = commands.add_parser("labels", help="print a teach body with the true labels of these ids")
    labels.add_argument("ids", nargs="+")
    loop = commands.add_parser("run", help="run the whole experiment against a Sieve")
    loop.add_argument("--url", default="http://127.0.0.1:8000")
    loop.add_argument("--rounds", type=int, default=11)
    loop.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    if args.command == "pool":
        json.dump(pool_body(), sys.stdout)
    elif args.command == "parquet":
        write_parquet(args.path)
    elif args.command == "labels":
        y = truth()
        json.dump({"labels": [{"id": i, "label": int(y[int(i.lstrip("x"))])} for i in args.ids]}, sys.stdout)
    else:
        run(args.url, args.rounds, args.k)


if __name__ == "__main__":
    main()
