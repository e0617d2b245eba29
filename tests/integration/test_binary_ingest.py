"""Binary bodies of create and add items (Arrow IPC stream, Parquet, .npy in a multipart form): what they store,
and each refusal as a problem naming the column or row at fault, leaving the pool as it was.

Most tests run the real Flask app in process over a real Redis (a small body limit keeps them fast); the last
ones send bodies over real HTTP to gunicorn, chunked as a streaming client sends them."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sieve.service.app import create_app
from sieve.storage.features import read_rows
from sieve.storage.keys import PoolKeys
from tests.helpers import api_processes, peak_rss_growth_mb

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
PROBLEM = "application/problem+json"
LIMIT = 512 * 1024
DIM = 4


@pytest.fixture
def client(settings, redis):
    return create_app(settings.with_overrides(max_content_length=LIMIT)).test_client()


def features_column(X: np.ndarray, fixed: bool = True) -> pa.Array:
    values = pa.array(X.reshape(-1))
    if fixed:
        return pa.FixedSizeListArray.from_arrays(values, X.shape[1])
    return pa.ListArray.from_arrays(pa.array(np.arange(0, X.size + 1, X.shape[1], dtype=np.int32)), values)


def table(ids, X=None, options: dict | None = None, fixed: bool = True, **columns) -> pa.Table:
    data = {
        "id": pa.array(ids, pa.string()),
        **({"features": features_column(X, fixed)} if X is not None else {}),
        **columns,
    }
    metadata = {"sieve": json.dumps(options)} if options is not None else None
    return pa.table(data).replace_schema_metadata(metadata)


def arrow(t: pa.Table, batch_rows: int | None = None) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, t.schema) as writer:
        for batch in t.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return sink.getvalue()


def parquet(t: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(t, sink, row_group_size=7)
    return sink.getvalue()


def npy(X) -> bytes:
    sink = io.BytesIO()
    np.save(sink, X, allow_pickle=True)
    return sink.getvalue()


def multipart(X, ids, **parts) -> dict:
    form = {"features": (io.BytesIO(npy(X)), "x.npy"), "ids": (io.BytesIO(json.dumps(ids).encode()), "ids.json")}
    for name, value in parts.items():
        form[name] = (io.BytesIO(json.dumps(value).encode()), f"{name}.json")
    return form


def post(client, path: str, body: bytes, content_type: str, **headers):
    return client.post(path, data=body, headers={"Content-Type": content_type, **headers})


def assert_problem(answer, status: int, field: str) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.headers["Content-Type"] == PROBLEM
    body = answer.get_json()
    assert body["field"] == field and body["errors"][0]["message"], body
    return body


def stored(redis, pool_id: str) -> np.ndarray:
    n, dim, chunk_rows = (int(x) for x in redis.hmget(PoolKeys(pool_id).meta, ["n_items", "dim", "chunk_rows"]))
    return read_rows(redis, PoolKeys(pool_id), 0, n, dim, chunk_rows)


def ids_of(redis, pool_id: str) -> list[str]:
    rows = redis.hgetall(PoolKeys(pool_id).ids)
    return [rows[str(i).encode()].decode() for i in range(len(rows))]


def rng_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.fixture
def pool(client):
    """Ten 4-d items, created from JSON."""
    X = rng_rows(10)
    answer = client.post(
        "/v1/pools", json={"items": [{"id": f"i{i}", "features": r.tolist()} for i, r in enumerate(X)]}
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["pool_id"]


def state(client, redis, pool_id: str) -> dict:
    status = client.get(f"/v1/pools/{pool_id}").get_json()
    return {
        "status": {k: status[k] for k in ("n_items", "version", "labels_version", "dimension", "classes_seen")},
        "ids": ids_of(redis, pool_id),
        "rows": stored(redis, pool_id).tobytes(),
    }


# -- what the bodies store ------------------------------------------------------------------------------------


def test_an_arrow_create_stores_rows_labels_and_the_options_of_its_metadata(client, redis):
    X, ids = rng_rows(30), [f"a{i}" for i in range(30)]
    labels = pa.array(["neg", None, "pos"] * 10)
    splits = pa.array([None, None, "eval"] * 10)
    options = {"name": "from arrow", "classes": ["neg", "pos"], "random_state": 3, "model": {"type": "gaussian_nb"}}
    answer = post(client, "/v1/pools", arrow(table(ids, X, options, label=labels, split=splits), 8), ARROW)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    status = answer.get_json()
    assert (status["name"], status["classes"], status["random_state"]) == ("from arrow", ["neg", "pos"], 3)
    assert status["model"]["type"] == "gaussian_nb"
    assert (status["n_items"], status["n_labeled"], status["n_eval"], status["dimension"]) == (30, 10, 10, DIM)
    assert np.array_equal(stored(redis, status["pool_id"]), X) and ids_of(redis, status["pool_id"]) == ids


def test_an_arrow_add_items_of_float64_variable_lists_in_several_batches(client, redis, pool):
    X = np.random.default_rng(1).normal(size=(25, DIM))
    body = arrow(table([f"b{i}" for i in range(25)], X, fixed=False), 4)
    answer = post(client, f"/v1/pools/{pool}/items", body, ARROW)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.get_json()["added"] == 25 and answer.get_json()["n_items"] == 35
    assert np.array_equal(stored(redis, pool)[10:], X.astype(np.float32))


def test_a_parquet_create_of_text_makes_a_text_pool(client, redis):
    texts = [f"text number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(20)]
    t = table([f"t{i}" for i in range(20)], text=pa.array(texts), label=pa.array([i % 2 for i in range(20)]))
    answer = post(client, "/v1/pools", parquet(t), PARQUET)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    status = answer.get_json()
    assert status["featurizer"] is not None and status["n_items"] == 20 and status["n_labeled"] == 20
    assert status["classes_seen"] == {"0": 10, "1": 10}


def test_a_parquet_add_items_stores_its_row_groups_in_order(client, redis, pool):
    X = rng_rows(30, seed=2)
    answer = post(client, f"/v1/pools/{pool}/items", parquet(table([f"p{i}" for i in range(30)], X)), PARQUET)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert np.array_equal(stored(redis, pool)[10:], X) and ids_of(redis, pool)[10:] == [f"p{i}" for i in range(30)]


def test_a_multipart_npy_create_and_add_items(client, redis):
    X = np.random.default_rng(3).normal(size=(12, DIM))
    labels = ["neg", "pos"] + [None] * 10
    form = multipart(X, [f"n{i}" for i in range(12)], labels=labels, sieve={"name": "npy", "classes": ["neg", "pos"]})
    answer = client.post("/v1/pools", data=form, content_type="multipart/form-data")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    status = answer.get_json()
    assert (status["name"], status["n_items"], status["n_labeled"]) == ("npy", 12, 2)
    Y = np.asfortranarray(rng_rows(5, seed=4))  # numpy.save writes it column after column
    form = {"features": (io.BytesIO(npy(Y)), "y.npy"), "ids": json.dumps([f"m{i}" for i in range(5)])}  # a field
    answer = client.post(f"/v1/pools/{status['pool_id']}/items", data=form, content_type="multipart/form-data")
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert np.array_equal(stored(redis, status["pool_id"]), np.vstack([X.astype(np.float32), Y]))


# -- refusals -------------------------------------------------------------------------------------------------

IDS = [f"x{i}" for i in range(6)]
GOOD = rng_rows(6, seed=5)


def _with(row: int, value: float, dtype=np.float64) -> np.ndarray:
    X = GOOD.astype(dtype)
    X[row, 1] = value
    return X


def _pickled_npy() -> dict:
    form = multipart(GOOD, IDS)
    form["features"] = (io.BytesIO(npy(np.array([{"a": 1}] * 6, dtype=object))), "x.npy")
    return form


def _truncated() -> bytes:
    body = arrow(table(IDS, GOOD), 2)
    return body[: len(body) // 2]


REFUSALS = {
    "nan": (arrow(table(IDS, _with(3, np.nan))), ARROW, 422, "items[3].features"),
    "infinity": (arrow(table(IDS, _with(4, np.inf, np.float32))), ARROW, 422, "items[4].features"),
    "beyond float32": (parquet(table(IDS, _with(5, 1e39))), PARQUET, 422, "items[5].features"),
    "pool's width": (arrow(table(IDS, rng_rows(6, DIM + 1))), ARROW, 422, "items[0].features"),
    "widths differ": (
        arrow(pa.table({"id": IDS, "features": [[1.0] * DIM] * 5 + [[1.0] * (DIM - 1)]})),
        ARROW,
        422,
        "items[5].features",
    ),
    "null row": (arrow(pa.table({"id": IDS, "features": [[1.0] * DIM] * 5 + [None]})), ARROW, 422, "items[5].features"),
    "duplicate in call": (arrow(table(IDS[:5] + ["x1"], GOOD), 2), ARROW, 422, "items[5].id"),
    "already in pool": (arrow(table(IDS[:4] + ["i3", "x5"], GOOD)), ARROW, 409, "items[4].id"),
    "id too long": (arrow(table(IDS[:2] + ["x" * 201] + IDS[3:], GOOD)), ARROW, 422, "items[2].id"),
    "truncated stream": (_truncated(), ARROW, 400, "body"),
    "not arrow": (b"\x00" * 100, ARROW, 400, "body"),
    "not parquet": (b"PAR1 but not really", PARQUET, 400, "body"),
    "integer features": (
        arrow(pa.table({"id": IDS, "features": pa.array([[1] * DIM] * 6, pa.list_(pa.int32()))})),
        ARROW,
        422,
        "features",
    ),
    "integer ids": (arrow(pa.table({"id": list(range(6)), "features": features_column(GOOD)})), ARROW, 422, "id"),
    "no id column": (arrow(pa.table({"features": features_column(GOOD)})), ARROW, 422, "id"),
    "no features": (arrow(pa.table({"id": IDS})), ARROW, 422, "features"),
    "unknown column": (arrow(table(IDS, GOOD, weight=pa.array([1.0] * 6))), ARROW, 422, "weight"),
    "options on add": (arrow(table(IDS, GOOD, {"name": "x"})), ARROW, 422, "sieve"),
    "bad label": (arrow(table(IDS, GOOD, label=pa.array([1.5] * 6))), ARROW, 422, "label"),
    "empty": (arrow(table([], np.zeros((0, DIM), np.float32))), ARROW, 422, "items"),
    "over the body limit": (arrow(table([f"y{i}" for i in range(40_000)], rng_rows(40_000))), ARROW, 413, "body"),
    "pickled npy": (_pickled_npy(), "multipart/form-data", 422, "features"),
    "npy of ints": (multipart(GOOD.astype(np.int64), IDS), "multipart/form-data", 422, "features"),
    "ids not aligned": (multipart(GOOD, IDS[:5]), "multipart/form-data", 422, "ids"),
    "npy id not a string": (multipart(GOOD, [["x0"]] + IDS[1:]), "multipart/form-data", 422, "items[0].id"),
    "npy duplicate id": (multipart(GOOD, IDS[:5] + ["x0"]), "multipart/form-data", 422, "items[5].id"),
    "empty id": (arrow(table(IDS[:1] + [""] + IDS[2:], GOOD)), ARROW, 422, "items[1].id"),
    "lone surrogate id": (multipart(GOOD, IDS[:3] + ["\ud800"] + IDS[4:]), "multipart/form-data", 422, "items[3].id"),
    "json body type": (b"id,features\n", "text/csv", 415, "Content-Type"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_add_items_names_the_fault_and_leaves_the_pool_unchanged(client, redis, pool, case):
    body, content_type, status, field = REFUSALS[case]
    before = state(client, redis, pool)
    if isinstance(body, dict):
        body = {name: (io.BytesIO(part.getvalue()), filename) for name, (part, filename) in body.items()}
        answer = client.post(f"/v1/pools/{pool}/items", data=body, content_type=content_type)
    else:
        answer = post(client, f"/v1/pools/{pool}/items", body, content_type)
    problem = assert_problem(answer, status, field)
    if status == 415:
        assert ARROW in problem["detail"] and PARQUET in problem["detail"]
    assert state(client, redis, pool) == before


def test_a_create_whose_options_are_bad_names_the_option_and_makes_no_pool(client, redis):
    body = arrow(table(IDS, GOOD, {"model": {"type": "svm"}, "strategy": "nope"}))
    answer = post(client, "/v1/pools", body, ARROW)
    assert answer.status_code == 422 and answer.get_json()["field"] in ("model", "strategy", "model.type")
    assert_problem(post(client, "/v1/pools", arrow(table(IDS, GOOD, {"items": []})), ARROW), 422, "sieve.items")
    assert_problem(post(client, "/v1/pools", arrow(table(IDS, GOOD, {"name": 1})), ARROW), 422, "name")
    assert client.get("/v1/pools").get_json()["pools"] == []


def test_a_label_outside_the_classes_of_its_options_refuses_the_whole_create(client, redis):
    body = arrow(table(IDS, GOOD, {"classes": ["a", "b"]}, label=pa.array(["a", None, "c", None, None, None])))
    assert_problem(post(client, "/v1/pools", body, ARROW), 422, "items[2].label")  # the row, not the 2nd label
    assert client.get("/v1/pools").get_json()["pools"] == []


def test_too_many_items_is_a_413_naming_the_items(settings, redis):
    client = create_app(settings.with_overrides(max_content_length=8 * 1024 * 1024)).test_client()
    n = 100_001
    body = arrow(table([str(i) for i in range(n)], np.zeros((n, 1), np.float32)), 30_000)
    assert_problem(post(client, "/v1/pools", body, ARROW), 413, "items")
    header_only = npy(np.zeros((n, 1), np.float32))[:128]  # the header says n rows: refused before any value
    form = {"features": (io.BytesIO(header_only), "x.npy"), "ids": (io.BytesIO(b"[]"), "ids.json")}
    assert_problem(client.post("/v1/pools", data=form, content_type="multipart/form-data"), 413, "items")
    assert client.get("/v1/pools").get_json()["pools"] == []


def test_a_body_without_length_is_cut_at_the_limit(client, redis, pool):
    before = state(client, redis, pool)
    body = arrow(table([f"y{i}" for i in range(40_000)], rng_rows(40_000)))
    answer = client.post(
        f"/v1/pools/{pool}/items",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": ARROW},
        environ_overrides={"wsgi.input_terminated": True},  # what a server sets for a chunked body
    )
    assert_problem(answer, 413, "body")
    assert state(client, redis, pool) == before


def test_a_pickle_named_npy_is_never_unpickled(client, redis, pool, tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Boom(str(marker)))
    form = {"features": (io.BytesIO(payload), "x.npy"), "ids": (io.BytesIO(json.dumps(IDS).encode()), "ids.json")}
    assert_problem(
        client.post(f"/v1/pools/{pool}/items", data=form, content_type="multipart/form-data"), 400, "features"
    )
    assert not marker.exists()


class _Boom:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# -- Idempotency-Key ------------------------------------------------------------------------------------------


def test_a_replayed_binary_add_items_changes_nothing_and_answers_as_the_first(client, redis, pool):
    body, key = arrow(table(IDS, GOOD), 2), {"Idempotency-Key": "binary-1"}
    first = post(client, f"/v1/pools/{pool}/items", body, ARROW, **key)
    assert first.status_code == 202, first.get_data(as_text=True)
    after = state(client, redis, pool)
    again = post(client, f"/v1/pools/{pool}/items", body, ARROW, **key)
    assert again.status_code == 202 and again.get_json() == first.get_json()
    assert state(client, redis, pool) == after
    other = post(client, f"/v1/pools/{pool}/items", arrow(table(IDS, GOOD * 2)), ARROW, **key)
    assert_problem(other, 422, "Idempotency-Key")


def test_a_multipart_replay_under_another_boundary_is_the_same_body(client, redis, pool):
    key = {"Idempotency-Key": "npy-1"}
    first = client.post(
        f"/v1/pools/{pool}/items", data=multipart(GOOD, IDS), content_type="multipart/form-data", headers=key
    )
    assert first.status_code == 202, first.get_data(as_text=True)
    again = client.post(
        f"/v1/pools/{pool}/items", data=multipart(GOOD, IDS), content_type="multipart/form-data", headers=key
    )
    assert again.status_code == 202 and again.get_json() == first.get_json()
    assert client.get(f"/v1/pools/{pool}").get_json()["n_items"] == 16


def test_a_replayed_binary_create_returns_the_first_pool(client, redis):
    body, key = parquet(table(IDS, GOOD, {"name": "once"})), {"Idempotency-Key": "create-bin"}
    first = post(client, "/v1/pools", body, PARQUET, **key)
    again = post(client, "/v1/pools", body, PARQUET, **key)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["pool_id"] == again.get_json()["pool_id"]
    assert len(client.get("/v1/pools").get_json()["pools"]) == 1


# -- over real HTTP ---------------------------------------------------------------------------------------------


def test_a_chunked_arrow_stream_over_http_creates_and_extends_a_pool(api, redis):
    X = rng_rows(3000, 16, seed=6)
    body = arrow(table([f"h{i}" for i in range(2000)], X[:2000], {"name": "streamed"}), 500)

    def chunks(data: bytes):  # a generator: requests sends it chunked, without Content-Length
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    answer = api.post("/v1/pools", data=chunks(body), headers={"Content-Type": ARROW})
    assert answer.status_code == 201, answer.text
    pool_id = answer.json()["pool_id"]
    more = parquet(table([f"h{i}" for i in range(2000, 3000)], X[2000:]))
    answer = api.post(f"/v1/pools/{pool_id}/items", data=more, headers={"Content-Type": PARQUET})
    assert answer.status_code == 202 and answer.json()["n_items"] == 3000
    assert np.array_equal(stored(redis, pool_id), X)


# -- labels sent with added items -------------------------------------------------------------------------------


def test_labels_of_added_items_are_taught_with_them_and_a_refused_label_adds_nothing(client, redis, pool):
    body = arrow(table(IDS, GOOD, label=pa.array([7, None, 8, None, None, None])))
    answer = post(client, f"/v1/pools/{pool}/items", body, ARROW)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    status = client.get(f"/v1/pools/{pool}").get_json()
    assert (status["n_items"], status["n_labeled"], status["classes_seen"]) == (16, 2, {"7": 1, "8": 1})
    before = state(client, redis, pool)
    strings = arrow(table(["s0", "s1"], GOOD[:2], label=pa.array(["a", None])))
    assert_problem(post(client, f"/v1/pools/{pool}/items", strings, ARROW), 422, "labels")
    form = multipart(GOOD[:2], ["s0", "s1"], labels=[None, "a"])
    answer = client.post(f"/v1/pools/{pool}/items", data=form, content_type="multipart/form-data")
    assert_problem(answer, 422, "labels")
    assert state(client, redis, pool) == before


def test_the_api_grows_by_less_than_twice_the_body_on_a_binary_ingest(api, live_url, redis):
    pids = api_processes(live_url)
    X = rng_rows(40_000, 256, seed=7)
    body = arrow(table([f"r{i}" for i in range(40_000)], X), 5000)  # 41 MB
    warm = arrow(table(["w"], X[:1]))  # the first binary call of a process loads what it loads once
    assert api.post("/v1/pools", data=warm, headers={"Content-Type": ARROW}).status_code == 201
    growth, answer = peak_rss_growth_mb(pids, lambda: api.post("/v1/pools", data=body, headers={"Content-Type": ARROW}))
    assert answer.status_code == 201, answer.text
    assert growth < 2 * len(body) / 2**20, f"the API grew by {growth:.0f} MB on a {len(body) / 2**20:.0f} MB body"


def test_a_json_add_items_takes_labels_of_its_items_too(client, redis, pool):
    items = [{"id": f"j{i}", "features": row.tolist()} for i, row in enumerate(GOOD)]
    stranger = client.post(f"/v1/pools/{pool}/items", json={"items": items, "labels": [{"id": "i0", "label": "a"}]})
    assert_problem(stranger, 422, "labels[0].id")  # i0 is in the pool, not among this call's items
    labels = [{"id": "j1", "label": "a"}, {"id": "j2", "label": "b", "split": "eval"}]
    answer = client.post(f"/v1/pools/{pool}/items", json={"items": items, "labels": labels})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    status = client.get(f"/v1/pools/{pool}").get_json()
    assert (status["n_items"], status["n_labeled"], status["n_eval"]) == (16, 1, 1)
