"""`sieve load` against the live service: every format, calls of bounded size, resuming, and bad files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sieve.cli import main
from sieve.client import Client
from sieve.limits import MAX_LABELS_PER_CALL
from sieve.load import loader
from sieve.load.formats import open_source, rebatch, to_wire
from sieve.storage.keys import PoolKeys
from tests.stack import wait_until

RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(300, 8)).astype(np.float32)
IDS = [f"r{i}" for i in range(300)]


def sieve_load(live_url: str, *args: str):
    """Runs `sieve load` in process (its client talks HTTP to the live service); the click result."""
    return CliRunner().invoke(main, ["load", "--url", live_url, "--quiet", *map(str, args)])


def loaded(result) -> tuple[str, int, int]:
    """The pool id (stdout), items sent and items skipped (the summary on stderr) that `sieve load` printed."""
    assert result.exit_code == 0, result.output
    words = result.stderr.split()
    assert words[1].rstrip(":") == result.stdout.strip()
    assert words[words.index("taught,") - 1] == "labels"
    return result.stdout.strip(), int(words[words.index("sent,") - 2]), int(words[words.index("skipped") - 1])


def taught(result) -> int:
    words = result.stderr.split()
    return int(words[words.index("taught,") - 2])


def stored_ids(redis, pool_id: str) -> list[str]:
    """Every id stored, in row order: a duplicate would show twice."""
    ids = redis.hgetall(PoolKeys(pool_id).ids)
    return [ids[str(row).encode()].decode() for row in range(len(ids))]


def stored_labels(redis, pool_id: str) -> dict:
    """{id: label} of every training label."""
    keys = PoolKeys(pool_id)
    return {redis.hget(keys.ids, row).decode(): json.loads(label) for row, label in redis.hgetall(keys.labels).items()}


def write_parquet(path, ids=IDS, features=FEATURES, labels=None, row_group_size=64):
    columns = {"id": ids, "features": pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), 8)}
    if labels is not None:
        columns["label"] = labels
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


def test_a_parquet_file_with_labels_makes_a_named_pool_in_calls_of_the_size_asked(
    live_url, redis, tmp_path, monkeypatch
):
    labels = [["a", "b"][i % 2] if i < 10 else None for i in range(300)]
    write_parquet(tmp_path / "items.parquet", labels=labels)
    calls = []
    for method in ("create_pool_arrow", "add_items_arrow"):
        sent = getattr(Client, method)

        def counting(self, *args, _sent=sent, **kwargs):
            calls.append(pa.ipc.open_stream(args[-1]).read_all().num_rows)
            return _sent(self, *args, **kwargs)

        monkeypatch.setattr(Client, method, counting)
    result = sieve_load(live_url, "--name", "from-parquet", "--batch-items", 70, tmp_path / "items.parquet")
    pool_id, sent, skipped = loaded(result)
    assert (sent, skipped) == (300, 0) and "(created)" in result.output
    assert calls == [70, 70, 70, 70, 20]
    status = Client(live_url).status(pool_id)
    assert (status["name"], status["n_items"], status["n_labeled"]) == ("from-parquet", 300, 10)
    assert stored_ids(redis, pool_id) == IDS


def test_npy_with_ids_or_row_numbers_and_csv_and_jsonl(live_url, redis, tmp_path):
    np.save(tmp_path / "x.npy", FEATURES[:50])
    (tmp_path / "ids.txt").write_text("\n".join(IDS[:50]) + "\n")
    client = Client(live_url)
    pool_id = client.create_pool()["pool_id"]
    assert loaded(sieve_load(live_url, "--pool", pool_id, "--ids", tmp_path / "ids.txt", tmp_path / "x.npy"))[1] == 50
    default_ids = loaded(sieve_load(live_url, "--name", "row-numbers", tmp_path / "x.npy"))[0]
    assert stored_ids(redis, default_ids) == [str(i) for i in range(50)]

    header = "id," + ",".join(f"f{j}" for j in range(8)) + ",label"
    rows = [f"{i}," + ",".join(map(str, row)) + ("," if int(i[1:]) % 7 else ",spam") for i, row in zip(IDS, FEATURES)]
    (tmp_path / "items.csv").write_text("\n".join([header, *rows[50:120]]) + "\n")
    assert loaded(sieve_load(live_url, "--pool", pool_id, "--batch-items", 30, tmp_path / "items.csv"))[1:] == (70, 0)
    lines = [json.dumps({"id": i, "features": row.tolist()}) for i, row in zip(IDS[120:160], FEATURES[120:160])]
    (tmp_path / "items.jsonl").write_text("\n".join(lines) + "\n")
    assert loaded(sieve_load(live_url, "--pool", pool_id, tmp_path / "items.jsonl"))[1:] == (40, 0)
    assert stored_ids(redis, pool_id) == IDS[:160]
    status = client.status(pool_id)
    assert status["n_labeled"] == len([i for i in range(50, 120) if i % 7 == 0])
    np.testing.assert_array_equal(
        np.frombuffer(redis.get(PoolKeys(pool_id).chunk(0)), dtype="<f4").reshape(-1, 8), FEATURES[:160]
    )


def test_a_text_file_makes_a_text_pool(live_url, redis, tmp_path):
    (tmp_path / "reviews.csv").write_text(
        'id,text,label\nr1,"great film, loved it",pos\nr2,dull and long,neg\nr3,a cast,\n'
    )
    pool_id, sent, _ = loaded(
        sieve_load(live_url, "--name", "reviews", "--featurizer", '{"n_features": 64}', tmp_path / "reviews.csv")
    )
    status = Client(live_url).status(pool_id)
    assert (sent, status["n_items"], status["n_labeled"]) == (3, 3, 2)


def test_a_rerun_or_a_larger_file_sends_only_the_missing_items_to_the_one_pool_of_that_name(live_url, redis, tmp_path):
    labels = ["even" if i % 2 == 0 else "odd" if i % 25 == 0 else None for i in range(300)]  # 150 + 6
    write_parquet(tmp_path / "first.parquet", IDS[:100], FEATURES[:100], labels[:100])
    order = RNG.permutation(300)  # the larger file holds the first's ids, scattered among the others
    write_parquet(tmp_path / "all.parquet", [IDS[i] for i in order], FEATURES[order], [labels[i] for i in order])
    first = sieve_load(live_url, "--name", "resumed", "--batch-items", 40, tmp_path / "first.parquet")
    pool_id = loaded(first)[0]
    assert loaded(first)[1:] == (100, 0) and taught(first) == 52
    # An annotator corrects a label the file gave: no rerun puts the file's back.
    Client(live_url).teach(pool_id, {"r0": "odd"})
    again = sieve_load(live_url, "--name", "resumed", "--batch-items", 40, tmp_path / "all.parquet")
    assert loaded(again) == (pool_id, 200, 100) and taught(again) == 156 - 52
    rerun = sieve_load(live_url, "--name", "resumed", tmp_path / "all.parquet")
    assert loaded(rerun) == (pool_id, 0, 300) and taught(rerun) == 0
    assert sorted(stored_ids(redis, pool_id)) == sorted(IDS)
    expected = {i: label for i, label in zip(IDS, labels) if label is not None}
    assert stored_labels(redis, pool_id) == {**expected, "r0": "odd"}
    assert [p["pool_id"] for p in Client(live_url).iter_pools() if p["name"] == "resumed"] == [pool_id]


def test_a_call_whose_answer_was_lost_is_replayed_not_refused(live_url, redis, tmp_path):
    """The same batch sent twice under its derived Idempotency-Key: the second is the first's answer, where a
    key of its own would get a 409 for ids already present."""
    write_parquet(tmp_path / "items.parquet", IDS[:20], FEATURES[:20])
    (batch,) = [to_wire(raw, 0) for raw in rebatch(open_source(tmp_path / "items.parquet").batches(20), 20)]
    client = Client(live_url)
    pool_id = client.create_pool()["pool_id"]
    loader._send(client, pool_id, batch)
    loader._send(client, pool_id, batch)
    assert stored_ids(redis, pool_id) == IDS[:20]


def test_a_load_killed_half_way_finishes_on_a_rerun_with_every_item_once(live_url, redis, tmp_path, service_env):
    n = 10_000
    features = RNG.normal(size=(n, 8)).astype(np.float32)
    np.save(tmp_path / "big.npy", features)
    client = Client(live_url)
    pool_id = client.create_pool()["pool_id"]
    args = ["-m", "sieve.cli", "load", "--url", live_url, "--pool", pool_id, "--batch-items", "10", "--quiet"]
    process = subprocess.Popen([sys.executable, *args, str(tmp_path / "big.npy")], env=service_env)
    try:
        wait_until(lambda: client.status(pool_id)["n_items"] >= 200, 60, "the first calls")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    interrupted = client.status(pool_id)["n_items"]
    assert 200 <= interrupted < n, "the load ended before it was killed: make the file larger"
    pool, sent, skipped = loaded(sieve_load(live_url, "--pool", pool_id, "--batch-items", 500, tmp_path / "big.npy"))
    assert (sent, skipped) == (n - interrupted, interrupted)
    assert stored_ids(redis, pool_id) == [str(i) for i in range(n)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,a,b\nx,1,2\ny,3,inf\n", "items.csv: row 1: items[1].features: must hold finite numbers"),
        ("name,a\nx,1\n", "items.csv: no `id` column"),
        ("id,a\nx,1\nx,2\n", "items.csv: row 1: items[1].id: duplicate id 'x' in this request"),
    ],
)
def test_a_bad_file_stops_the_load_with_the_row_at_fault(live_url, redis, tmp_path, content, message):
    (tmp_path / "items.csv").write_text(content)
    result = sieve_load(live_url, "--name", "bad", tmp_path / "items.csv")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_the_pool_must_exist_and_a_name_must_name_one_pool(live_url, redis, tmp_path):
    write_parquet(tmp_path / "items.parquet", IDS[:5], FEATURES[:5])
    missing = sieve_load(live_url, "--pool", "00ffffffffffffff", tmp_path / "items.parquet")
    assert missing.exit_code == 1 and "404" in missing.output
    client = Client(live_url)
    twins = [client.create_pool(name="twin")["pool_id"] for _ in range(2)]
    result = sieve_load(live_url, "--name", "twin", tmp_path / "items.parquet")
    assert result.exit_code == 1 and "2 pools are named 'twin'" in result.output and twins[0] in result.output


def test_a_batch_with_more_labels_than_a_call_may_carry_goes_as_several_calls(live_url, redis, tmp_path):
    n = MAX_LABELS_PER_CALL + 500
    features = RNG.normal(size=(n, 2)).astype(np.float32)
    table = pa.table(
        {
            "id": [f"l{i}" for i in range(n)],
            "features": pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), 2),
            "label": pa.array((features[:, 0] > 0).astype(np.int64)),
        }
    )
    pq.write_table(table, tmp_path / "labeled.parquet")
    result = sieve_load(live_url, "--name", "all labeled", "--batch-items", n, tmp_path / "labeled.parquet")
    pool_id, sent, _ = loaded(result)
    assert sent == n and taught(result) == n
    assert Client(live_url).status(pool_id)["n_labeled"] == n
