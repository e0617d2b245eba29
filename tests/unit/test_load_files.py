"""`sieve load`'s readers: every format read in batches as the wire's columns, and files it refuses."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sieve.load import wire
from sieve.load.formats import FileError, open_source, rebatch, to_wire
from sieve.load.loader import _Call

FEATURES = np.arange(12, dtype=np.float32).reshape(6, 2)
IDS = [f"x{i}" for i in range(6)]


def read(path, rows=4, **options) -> list[pa.RecordBatch]:
    source = open_source(path, **options)
    batches, first = [], 0
    for raw in rebatch(source.batches(rows), rows):
        batches.append(to_wire(raw, first))
        first += raw.num_rows
    return batches


def joined(batches) -> pa.Table:
    """The batches as one table; a batch without a label has none of the column (nulls here)."""
    return pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="default")


def as_items(batches) -> tuple[list, np.ndarray]:
    table = joined(batches)
    features = table.column("features").combine_chunks()
    return table.column("id").to_pylist(), features.flatten().to_numpy().reshape(-1, features.type.list_size)


def table_of(**columns) -> pa.Table:
    return pa.table(columns)


def features_column(matrix=FEATURES):
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def test_parquet_is_read_in_batches_of_the_size_asked_with_its_total(tmp_path):
    path = tmp_path / "items.parquet"
    pq.write_table(table_of(id=IDS, features=pa.array(FEATURES.tolist()), label=[1, None, 0, None, None, 1]), path)
    source = open_source(path)
    assert source.total == 6 and source.format == "parquet"
    batches = read(path)
    assert [b.num_rows for b in batches] == [4, 2]
    assert batches[0].schema.field("features").type == pa.list_(pa.float32(), 2)
    ids, matrix = as_items(batches)
    assert ids == IDS and np.array_equal(matrix, FEATURES)
    assert joined(batches).column("label").to_pylist() == [1, None, 0, None, None, 1]


@pytest.mark.parametrize("kind", ["file", "stream"])
def test_arrow_ipc_files_and_streams(tmp_path, kind):
    path = tmp_path / ("items.arrow" if kind == "file" else "items.arrows")
    table = table_of(id=IDS, features=features_column())
    with pa.OSFile(str(path), "wb") as sink:
        writer = pa.ipc.new_file if kind == "file" else pa.ipc.new_stream
        with writer(sink, table.schema) as out:
            for batch in table.to_batches(max_chunksize=5):
                out.write_batch(batch)
    assert open_source(path).total == (6 if kind == "file" else None)
    ids, matrix = as_items(read(path, rows=3))
    assert ids == IDS and np.array_equal(matrix, FEATURES)


def test_npy_with_an_ids_file_or_row_numbers(tmp_path):
    np.save(tmp_path / "x.npy", FEATURES.astype(np.float64))
    (tmp_path / "ids.txt").write_text("\n".join(IDS) + "\n")
    ids, matrix = as_items(read(tmp_path / "x.npy", ids=tmp_path / "ids.txt"))
    assert ids == IDS and np.array_equal(matrix, FEATURES)
    assert as_items(read(tmp_path / "x.npy"))[0] == ["0", "1", "2", "3", "4", "5"]
    (tmp_path / "short.txt").write_text("a\nb\n")
    with pytest.raises(FileError, match="2 ids for the 6 rows"):
        open_source(tmp_path / "x.npy", ids=tmp_path / "short.txt")


def test_csv_feature_columns_are_every_column_but_id_label_and_split(tmp_path):
    path = tmp_path / "items.csv"
    # Whole numbers first, then decimals: the columns are read as floats from the start.
    rows = ["id,a,label,b"] + [f"{i},{i},{'pos' if i % 2 else ''},{i}.5" for i in range(6)]
    path.write_text("\n".join(rows) + "\n")
    batches = read(path)
    ids, matrix = as_items(batches)
    assert ids == [str(i) for i in range(6)]
    assert matrix.tolist() == [[i, i + 0.5] for i in range(6)]
    assert joined(batches).column("label").to_pylist() == [None, "pos", None, "pos", None, "pos"]


def test_csv_and_jsonl_text_items(tmp_path):
    (tmp_path / "t.csv").write_text('id,text\na,"hello, world"\nb,bye\n')
    (tmp_path / "t.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "text": t}) for i, t in [("a", "hello, world"), ("b", "bye")])
    )
    for name in ("t.csv", "t.jsonl"):
        (batch,) = read(tmp_path / name)
        assert batch.schema.names == ["id", "text"]
        assert batch.column("text").to_pylist() == ["hello, world", "bye"]


def test_jsonl_items_as_the_json_api_takes_them(tmp_path):
    path = tmp_path / "items.jsonl"
    lines = [
        {"id": i, "features": row, **({"label": 1} if i == "x0" else {})}
        for i, row in zip(IDS, FEATURES.astype(int).tolist())
    ]
    path.write_text("\n".join(map(json.dumps, lines)) + "\n")
    batches = read(path)
    ids, matrix = as_items(batches)
    assert ids == IDS and np.array_equal(matrix, FEATURES)
    assert joined(batches).column("label").to_pylist()[:2] == [1, None]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", "name,a\nx,1\n", "no `id` column"),
        ("a.csv", "id,a\nx,1\ny,\n", "row 1: feature column `a` is empty"),
        ("a.csv", "id,a,b\nx,1,hello\n", "holds string, not numbers|cannot read"),
        (
            "a.jsonl",
            '{"id": "a", "features": [1, 2]}\n{"id": "b", "features": [1]}\n',
            "row 1: 1 features where row 0 has 2",
        ),
        ("a.jsonl", "not json\n", "cannot read it as jsonl"),
        ("a.parquet", "not parquet", "cannot read it as parquet"),
        ("a.txt", "x", "cannot tell its format"),
        ("a.jsonl", '{"id": "a", "text": "t", "features": [1]}\n', "both a `text` and a `features` column"),
    ],
)
def test_a_bad_file_is_refused_saying_what_and_where(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(FileError, match=message):
        read(path)


def test_a_create_body_carries_the_options_in_the_schema_metadata():
    batch = to_wire(pa.record_batch({"id": ["a"], "features": pa.array([[1.0, 2.0]])}), 0)
    reader = pa.ipc.open_stream(wire.body(batch, {"name": "n", "strategy": "margin"}))
    assert json.loads(reader.schema.metadata[b"sieve"]) == {"name": "n", "strategy": "margin"}
    assert reader.read_all().column("id").to_pylist() == ["a"]


@pytest.mark.parametrize(
    ("labels", "sizes"), [(10_000, [10_003]), (10_001, [10_000, 3]), (20_001, [10_000, 10_000, 3])]
)
def test_a_batch_is_cut_into_calls_of_at_most_the_labels_one_call_may_carry(labels, sizes):
    n = sum(sizes)
    label = pa.array([1 if i < labels else None for i in range(n)], pa.int64())
    batch = pa.record_batch({"id": [str(i) for i in range(n)], "label": label})
    calls = _Call.split(batch, first_row=5)
    assert [call.batch.num_rows for call in calls] == sizes
    assert [len(call.label_rows) for call in calls] == [min(10_000, labels - 10_000 * k) for k in range(len(sizes))]
    assert calls[-1].rows[-1] == 5 + n - 1


def test_a_call_is_sent_as_record_batches_of_a_few_mb_that_the_api_decodes_one_at_a_time():
    rows, dim = 40_000, 64  # 10 MB of features
    values = np.arange(rows * dim, dtype=np.float32)
    batch = pa.record_batch(
        {"id": [str(i) for i in range(rows)], "features": pa.FixedSizeListArray.from_arrays(values, dim)}
    )
    reader = pa.ipc.open_stream(wire.body(batch))
    sizes = [b.nbytes for b in reader]
    assert len(sizes) >= 3 and max(sizes) <= wire.MESSAGE_BYTES * 1.01, sizes
    table = pa.ipc.open_stream(wire.body(batch)).read_all()
    assert table.column("id").to_pylist() == batch.column("id").to_pylist()
    assert np.array_equal(table.column("features").combine_chunks().flatten().to_numpy(), values)
