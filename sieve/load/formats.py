"""Local files read as items, in batches: Parquet, Arrow IPC (file or stream), .npy, CSV and JSON Lines.

Every format is read a batch at a time, never whole: Parquet by `iter_batches`, Arrow IPC files through a
memory map, .npy through `numpy.load(mmap_mode="r")`, CSV and JSON Lines by pyarrow's streaming readers.

Columns (Parquet, Arrow, CSV, JSON Lines): `id` (required; numbers become their decimal strings, except in
JSON Lines, whose ids are strings as in the JSON API), then either `text` (a text pool), or `features` (a
list of numbers per row, every row of one length), or else every other column but `label` is one feature
(numbers; the file's column order is the features' order). `label` is optional: a string or an integer,
empty (null) for an item without one; so is `split` (`train`, the default, or `eval`) of a labeled item.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sieve.load import FORMAT_NAMES

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrow",
    ".npy": "npy",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
"""File name endings and the format each names; `--format` overrides."""

TEXT_BLOCK_BYTES = 8 * 1024 * 1024
"""Bytes of CSV or JSON Lines that pyarrow parses at a time."""

RESERVED = ("id", "text", "features", "label", "split")


class FileError(ValueError):
    """The file cannot be read as items: says what is wrong and where."""


@dataclass
class Source:
    """A file opened as items: how many (None when only reading it all would tell) and its batches."""

    path: Path
    format: str
    total: int | None
    _open: object

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """The file's rows, in order, as record batches of the file's own columns (of any size)."""
        try:
            yield from self._open(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as error:
            raise FileError(f"{self.path}: cannot read it as {self.format}: {error}") from None


def format_of(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    found = FORMATS.get(path.suffix.lower())
    if not found:
        raise FileError(
            f"{path}: cannot tell its format from its name; use one of {', '.join(sorted(FORMATS))}, "
            f"or --format {'|'.join(FORMAT_NAMES)}"
        )
    return found


def open_source(path: str | Path, format: str | None = None, ids: str | Path | None = None) -> Source:
    """Opens the file (reading no more than its metadata and first block); `ids`: the .npy rows' ids file."""
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    fmt = format_of(path, format)
    if ids is not None and fmt != "npy":
        raise FileError("--ids goes with a .npy feature matrix only: other formats carry an `id` column")
    try:
        return _OPENERS[fmt](path, ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError, ValueError) as error:
        if isinstance(error, FileError):
            raise
        raise FileError(f"{path}: cannot read it as {fmt}: {error}") from None


def _parquet(path: Path, _ids) -> Source:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return Source(path, "parquet", file.metadata.num_rows, lambda rows: file.iter_batches(batch_size=rows))


def _arrow(path: Path, _ids) -> Source:
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        # Not the IPC file format (which ends with a footer): an IPC stream, read front to back.
        pa.ipc.open_stream(pa.memory_map(str(path))).schema  # noqa: B018 -- fails here if it is no stream either

        def stream(_rows):
            yield from pa.ipc.open_stream(pa.memory_map(str(path)))

        return Source(path, "arrow", None, stream)

    def batches(_rows):
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)

    total = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    return Source(path, "arrow", total, batches)


def _npy(path: Path, ids_path) -> Source:
    matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    if matrix.ndim != 2 or not (np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool):
        raise FileError(f"{path}: a .npy file must hold a 2-D array of numbers (rows x features), not {matrix.shape}")
    n, dim = matrix.shape
    if ids_path is not None:
        ids_path = Path(ids_path)
        with ids_path.open("rb") as handle:
            lines = sum(1 for _ in handle)
        if lines != n:
            raise FileError(f"{ids_path}: {lines} ids for the {n} rows of {path}: give one id per line, in row order")

    def batches(rows):
        handle = ids_path.open(encoding="utf-8") if ids_path is not None else None
        try:
            for start in range(0, n, rows):
                block = np.ascontiguousarray(matrix[start : start + rows], dtype=np.float32)
                if handle is not None:
                    names = [handle.readline().rstrip("\r\n") for _ in range(len(block))]
                else:
                    names = [str(i) for i in range(start, start + len(block))]
                features = pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), dim)
                yield pa.RecordBatch.from_arrays([pa.array(names, pa.string()), features], ["id", "features"])
        finally:
            if handle is not None:
                handle.close()

    return Source(path, "npy", n, batches)


def _csv(path: Path, _ids) -> Source:
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(block_size=TEXT_BLOCK_BYTES)
    # The header first: every feature column is then read as float64, so that a column of whole numbers in
    # the first block does not fix its type to integers for the blocks that follow.
    columns = pcsv.open_csv(path, read_options=read).schema
    if "id" not in columns.names:
        raise FileError(f"{path}: no `id` column (the columns are {', '.join(columns.names)})")
    types = {name: pa.float64() for name in columns.names if name not in RESERVED}
    types.update({name: pa.string() for name in ("id", "text", "split") if name in columns.names})
    if "label" in columns.names and pa.types.is_null(columns.field("label").type):
        types["label"] = pa.string()  # empty in the whole first block: strings, whatever comes later
    convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)

    def batches(_rows):
        yield from pcsv.open_csv(path, read_options=read, convert_options=convert)

    pcsv.open_csv(path, read_options=read, convert_options=convert)  # the first block converts, or says why not
    return Source(path, "csv", None, batches)


def _jsonl(path: Path, _ids) -> Source:
    import pyarrow.json as pjson

    read = pjson.ReadOptions(block_size=TEXT_BLOCK_BYTES)
    parse = pjson.ParseOptions(
        explicit_schema=pa.schema([("id", pa.string()), ("features", pa.list_(pa.float64())), ("text", pa.string())]),
        unexpected_field_behavior="infer",
    )

    def batches(_rows):
        for batch in pjson.open_json(path, read_options=read, parse_options=parse):
            # The schema names both kinds: the one no line of this batch has is left out.
            absent = [n for n in ("features", "text") if batch.column(n).null_count == batch.num_rows]
            yield batch.drop_columns(absent) if len(absent) == 1 else batch

    pjson.open_json(path, read_options=read, parse_options=parse)  # the first block parses, or says why not
    return Source(path, "jsonl", None, batches)


_OPENERS = {"parquet": _parquet, "arrow": _arrow, "npy": _npy, "csv": _csv, "jsonl": _jsonl}


# -- the file's columns as the wire's --------------------------------------------------------------------


def rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The same rows in batches of exactly `rows` (the last one fewer), whatever sizes the reader gave."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield _concat(pending)
                pending, held = [], 0
    if held:
        yield _concat(pending)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def to_wire(batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
    """The batch in the wire's columns (sieve.load.wire); `first_row`: its first row's place in the file,
    for error messages."""
    names = batch.schema.names
    if "id" not in names:
        raise FileError(f"no `id` column (the columns are {', '.join(names) or 'none'})")
    columns = {"id": _ids(batch.column("id"), first_row)}
    if "text" in names:
        if "features" in names:
            raise FileError("both a `text` and a `features` column: a pool holds one or the other")
        columns["text"] = _strings(batch.column("text"), "text", first_row)
    elif "features" in names:
        columns["features"] = _feature_lists(batch.column("features"), first_row)
    else:
        columns["features"] = _feature_columns(batch, [n for n in names if n not in RESERVED], first_row)
    if "label" in names:
        label = _labels(batch.column("label"), first_row)
        if label is not None:
            columns["label"] = label
            if "split" in names:
                columns["split"] = _splits(batch.column("split"))
    return pa.RecordBatch.from_arrays(list(columns.values()), list(columns))


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _first_null(column: pa.Array) -> int:
    return int(pc.index(pc.is_null(column), True).as_py())


def _ids(column: pa.Array, first_row: int) -> pa.Array:
    if column.null_count:
        raise FileError(f"row {first_row + _first_null(column)}: the id is empty")
    if pa.types.is_integer(column.type) or _is_string(column.type):
        return column.cast(pa.string())
    raise FileError(f"the `id` column must hold strings or integers, not {column.type}")


def _strings(column: pa.Array, name: str, first_row: int) -> pa.Array:
    if not _is_string(column.type):
        raise FileError(f"the `{name}` column must hold strings, not {column.type}")
    if column.null_count:
        raise FileError(f"row {first_row + _first_null(column)}: the {name} is empty")
    return column.cast(pa.string())


def _feature_lists(column: pa.Array, first_row: int) -> pa.Array:
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise FileError(f"the `features` column must hold lists of numbers, not {kind}")
    if column.null_count:
        raise FileError(f"row {first_row + _first_null(column)}: the features are empty")
    if not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise FileError(f"the `features` column must hold lists of numbers, not {kind}")
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    else:
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if len(lengths) else 0
        wrong = np.flatnonzero(lengths != dim)
        if len(wrong):
            raise FileError(
                f"row {first_row + int(wrong[0])}: {int(lengths[wrong[0]])} features where row {first_row} has {dim}"
            )
    values = column.flatten()  # honours the column's offset when it is a slice
    if values.null_count:
        raise FileError(f"rows {first_row}-{first_row + len(column) - 1}: a feature value is empty (null)")
    return _fixed(values.to_numpy(zero_copy_only=False), dim)


def _feature_columns(batch: pa.RecordBatch, names: list[str], first_row: int) -> pa.Array:
    if not names:
        raise FileError("no features: give a `features` column (lists of numbers), feature columns, or a `text` column")
    matrix = np.empty((batch.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        column = batch.column(name)
        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise FileError(f"column `{name}` is taken as a feature but holds {column.type}, not numbers")
        if column.null_count:
            raise FileError(f"row {first_row + _first_null(column)}: feature column `{name}` is empty")
        matrix[:, j] = column.to_numpy(zero_copy_only=False)
    return _fixed(matrix.reshape(-1), len(names))


def _fixed(values: np.ndarray, dim: int) -> pa.Array:
    # Values beyond float32's range become inf here, which the API refuses naming the item.
    with np.errstate(over="ignore"):
        flat = np.asarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim)


def _labels(column: pa.Array, first_row: int) -> pa.Array | None:
    """string or int64 labels, null where an item has none; None when the batch has no label at all."""
    kind = column.type
    if column.null_count == len(column):
        return None
    if pa.types.is_integer(kind):
        return column.cast(pa.int64())
    if _is_string(kind):
        return column.cast(pa.string())
    if pa.types.is_floating(kind):
        values = column.to_numpy(zero_copy_only=False)
        known = values[~np.isnan(values)]
        if np.all(known == np.round(known)):
            return column.cast(pa.int64())
    raise FileError(f"the `label` column must hold strings or integers, not {kind}")


def _splits(column: pa.Array) -> pa.Array:
    if not (_is_string(column.type) or pa.types.is_null(column.type)):
        raise FileError(f"the `split` column must hold strings (train or eval), not {column.type}")
    return column.cast(pa.string())
