"""Binary bodies of POST /v1/pools and POST /v1/pools/{id}/items: an Arrow IPC stream, a Parquet file, or a
.npy matrix with its ids in a multipart form (docs/api.md, Binary ingest).

Each is read in bounded batches: every batch is checked as JSON items are (service.fields) and copied into
one float32 matrix that grows in place (or, for a text pool, into a list of texts), then dropped. The matrix
is the only full copy of the rows. Limits hold before anything further is read. The result is the dict a
JSON body parses to: `items` an ItemBatch, `labels` from the `label` and `split` columns, and a create's
options from the body's `sieve` metadata, so that the request schemas check everything else exactly as for
JSON. The body's sha256 is taken as it is read (`g.body_hash`), for Idempotency-Key.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import re
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager

import marshmallow as ma
import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (its kernels, ~20 MB, load with the process, not in a body's first check)
import pyarrow.parquet as pq
from flask import current_app, g, request
from webargs.flaskparser import abort

from sieve import limits
from sieve.core.errors import SieveError
from sieve.core.items import ItemBatch
from sieve.service.fields import (
    TOO_MANY_ITEMS,
    UNFIT,
    LabelField,
    check_new_id,
    dimension_problem,
    parse_texts,
    plainly_new_ids,
    unfit_rows,
)

ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MULTIPART = "multipart/form-data"
TYPES = (ARROW_STREAM, PARQUET, MULTIPART)
"""The binary media types of the endpoints in ENDPOINTS, besides application/json."""

ENDPOINTS = frozenset({"pools.PoolCollection", "pools.add_items"})
"""The endpoints that take items: create and add items."""

OPTIONS = "sieve"
"""The schema metadata key (Arrow, Parquet) or form part (multipart) holding a create's options as JSON."""

COLUMNS = ("id", "features", "text", "label", "split")
PARTS = (OPTIONS, "ids", "features", "labels", "splits")

BATCH_BYTES = 4 * 1024 * 1024
"""Decoded bytes of one batch read from a Parquet file or a .npy matrix."""

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
"""A Parquet body is kept in memory up to this size while it is received, on disk beyond."""

_READ_BYTES = 1024 * 1024


def request_body_doc(create: bool) -> dict:
    """The binary media types of an endpoint's request body in OpenAPI, beside its JSON schema."""
    options = (
        f" A create's options (the JSON body without `items` and `labels`) are the schema metadata key "
        f"`{OPTIONS}`, as JSON."
        if create
        else ""
    )
    table = (
        "Columns: `id` (string), and `features` (fixed-size or plain lists of float32 or float64, one width) or "
        "`text` (string, a text pool); optional `label` (string or integer; null: unlabeled) and `split` "
        f"(`train` or `eval`).{options} docs/api.md, Binary ingest."
    )
    parts = {
        "features": {
            "type": "string",
            "format": "binary",
            "description": "A .npy file: a 2-D float32 or float64 array.",
        },
        "ids": {"type": "string", "description": "A JSON array of the ids, one per row of features."},
        "labels": {"type": "string", "description": "A JSON array aligned with ids; null: unlabeled."},
        "splits": {"type": "string", "description": "A JSON array aligned with ids: train (null) or eval."},
    }
    if create:
        parts[OPTIONS] = {"type": "string", "description": "The create's options as a JSON object."}
    binary = {"type": "string", "format": "binary"}
    return {
        "content": {
            ARROW_STREAM: {"schema": {**binary, "description": f"An Arrow IPC stream. {table}"}},
            PARQUET: {"schema": {**binary, "description": f"A Parquet file. {table}"}},
            MULTIPART: {"schema": {"type": "object", "properties": parts, "required": ["features", "ids"]}},
        }
    }


def accepted_types() -> str:
    return ", ".join(("application/json", *TYPES))


def is_tabular() -> bool:
    """Whether this request carries a binary body that read_body reads."""
    return request.endpoint in ENDPOINTS and request.mimetype in TYPES


def read_body() -> dict:
    """The request's binary body as the dict its JSON form would parse to."""
    create = request.endpoint == "pools.PoolCollection"
    max_bytes = current_app.config["MAX_CONTENT_LENGTH"]
    if request.mimetype == MULTIPART:
        return _multipart(create, max_bytes)
    digest = hashlib.sha256()
    try:
        if request.mimetype == ARROW_STREAM:
            source = _HashingReader(request.stream, digest, max_bytes)
            reader = pa.ipc.open_stream(source)
            body = _table(reader.schema, reader, create, max_bytes)
            source.drain()  # bytes after the stream's end count in the digest too: they make another body
        else:
            # One thread, no pre-buffering of whole column chunks: a row group at a time, read as needed.
            parquet = pq.ParquetFile(_spooled(request.stream, digest), pre_buffer=False)
            if parquet.metadata.num_rows > limits.MAX_ITEMS_PER_CALL:
                _refuse(413, {"items": [TOO_MANY_ITEMS]})
            batches = parquet.iter_batches(batch_size=_batch_rows(parquet.metadata), use_threads=False)
            schema = parquet.schema_arrow
            body = _table(schema, batches, create, max_bytes, parquet.metadata.num_rows)
    except (pa.ArrowException, OSError, ValueError, EOFError) as error:  # UnicodeDecodeError is a ValueError
        kind = "an Arrow IPC stream" if request.mimetype == ARROW_STREAM else "a Parquet file"
        _refuse(400, {"body": [f"is not a readable {kind}: {str(error)[:300]}"]})
    g.body_hash = digest.hexdigest()
    return body


@contextmanager
def labels_named_by_row():
    """Inside, an error about the j-th label of a binary body names the row that carried it,
    `items[i].label`: such a body has rows, not a list of labels."""
    try:
        yield
    except SieveError as error:
        rows = g.get("label_rows")
        place = re.fullmatch(r"labels\[(\d+)\](\.\w+)", error.field or "")
        if rows is not None and place:
            error.field = f"items[{rows[int(place[1])]}]{place[2]}"
        raise


def _refuse(status: int, messages: dict):
    abort(status, messages=messages)


class _HashingReader:
    """The request's stream as pyarrow reads it, each byte added to the body's digest as it passes."""

    closed = False

    def __init__(self, stream, digest, max_bytes: int):
        self.stream, self.digest, self.max_bytes = stream, digest, max_bytes

    def read(self, size: int = -1) -> bytes | memoryview:
        if size < 0:
            data = self.stream.read()
            self.digest.update(data)
            return data
        # A record batch's message is asked for whole. Read in one call, gunicorn would gather it in its
        # own buffer and copy it out, two transient copies of a batch that may be the whole body; read in
        # bounded pieces into one buffer, it is held once. The buffer is an anonymous map, whose pages take
        # memory only once written: the size asked for comes from the body, and a hostile one may claim
        # any size (up to the body limit; the stream stops there) without sending it.
        buffer = memoryview(mmap.mmap(-1, max(1, min(size, self.max_bytes))))
        filled, wanted = 0, min(size, len(buffer))
        while filled < wanted:
            piece = self.stream.read(min(_READ_BYTES, wanted - filled))
            if not piece:
                break
            buffer[filled : filled + len(piece)] = piece
            filled += len(piece)
        data = buffer[:filled]
        self.digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(_READ_BYTES):
            pass


def _spooled(stream, digest) -> tempfile.SpooledTemporaryFile:
    """The body in a seekable file (Parquet's footer comes last), in memory while small; the stream stops at
    the body limit."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    while data := stream.read(_READ_BYTES):
        digest.update(data)
        spool.write(data)
    spool.seek(0)
    return spool


# -- tables: Arrow and Parquet ---------------------------------------------------------------------


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _batch_rows(metadata: pq.FileMetaData) -> int:
    """Rows per batch of a Parquet file, so that a batch decodes to about BATCH_BYTES (from the first row
    group's uncompressed size)."""
    if metadata.num_row_groups == 0:
        return 1
    group = metadata.row_group(0)
    return max(1, BATCH_BYTES * max(group.num_rows, 1) // max(group.total_byte_size, 1))


def _check_schema(schema: pa.Schema) -> str:
    """Refuses columns Sieve does not read or cannot take, naming the column; the kind of items, features or
    text."""
    names = schema.names
    for name in names:
        if name not in COLUMNS:
            _refuse(422, {name: [f"unknown column; the columns are {', '.join(COLUMNS)}"]})
        if names.count(name) > 1:
            _refuse(422, {name: ["appears twice"]})
    if "id" not in names:
        _refuse(422, {"id": ["missing column: every item needs an id"]})
    if not _is_text(schema.field("id").type):
        _refuse(422, {"id": [f"must be a column of strings (ids are text, as in JSON), not {schema.field('id').type}"]})
    if ("features" in names) == ("text" in names):
        _refuse(422, {"features": ["give one column of features, or of text for a text pool"]})
    kind = "features" if "features" in names else "text"
    column = schema.field(kind).type
    if kind == "text" and not _is_text(column):
        _refuse(422, {"text": [f"must be a column of strings, not {column}"]})
    if kind == "features":
        is_list = pa.types.is_fixed_size_list(column) or pa.types.is_list(column) or pa.types.is_large_list(column)
        if not is_list or column.value_type not in (pa.float32(), pa.float64()):
            _refuse(422, {"features": [f"must be a column of lists of float32 or float64, not {column}"]})
        if pa.types.is_fixed_size_list(column) and dimension_problem(column.list_size):
            _refuse(422, {"features": [dimension_problem(column.list_size)]})
    if "label" in names:
        label = schema.field("label").type
        if not (_is_text(label) or pa.types.is_integer(label)):
            _refuse(422, {"label": [f"must be a column of strings or integers, not {label}"]})
    if "split" in names and not _is_text(schema.field("split").type):
        _refuse(422, {"split": [f"must be a column of strings, not {schema.field('split').type}"]})
    return kind


def _options(schema: pa.Schema, create: bool) -> dict:
    raw = (schema.metadata or {}).get(OPTIONS.encode())
    if raw is None:
        return {}
    if not create:
        _refuse(422, {OPTIONS: ["a pool's options are given when it is created, not with its items"]})
    return _options_of(raw)


def _options_of(raw: bytes) -> dict:
    try:
        options = json.loads(raw)
    except (RecursionError, ValueError):
        _refuse(400, {OPTIONS: ["must be a JSON object: the create body without items and labels"]})
    if not isinstance(options, dict):
        _refuse(422, {OPTIONS: ["must be a JSON object: the create body without items and labels"]})
    for key in ("items", "labels"):
        if key in options:
            _refuse(422, {OPTIONS: {key: ["comes from the rows of the body, not its options"]}})
    return options


def _table(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], create: bool, max_bytes: int, expected_rows: int = 0
) -> dict:
    kind = _check_schema(schema)
    options = _options(schema, create)
    rows = _Rows(kind, max_bytes, expected_rows)
    for batch in batches:
        rows.add_batch(batch)
    return {**options, **rows.body()}


def _reserve(rows: int, dim: int) -> np.ndarray:
    """A float32 (rows, dim) matrix in an anonymous memory map: a page takes memory once a row is written to
    it, so a matrix reserved for as many rows as the body could hold costs only the rows it gets, and is
    never copied to grow (a growing array would leave its earlier copies in the heap)."""
    return np.frombuffer(mmap.mmap(-1, max(rows, 1) * dim * 4), dtype=np.float32)[: rows * dim].reshape(rows, dim)


def _first(mask) -> int:
    return int(np.flatnonzero(mask)[0])


class _Rows:
    """A call's items as they arrive, batch by batch."""

    def __init__(self, kind: str, max_bytes: int, expected_rows: int = 0):
        self.kind, self.max_bytes, self.expected_rows = kind, max_bytes, expected_rows
        self.ids: list[str] = []
        self.seen: set[str] = set()
        self.matrix: np.ndarray | None = None  # rows [0, len(ids)) are filled
        self.texts: list[str] = []
        self.decoded = 0
        self.labels: list[dict] = []

    def refuse_row(self, row: int, column: str, message: str, status: int = 422):
        _refuse(status, {"items": {row: {column: [message]}}})

    def add_ids(self, ids: list) -> None:
        first = len(self.ids)
        if first + len(ids) > limits.MAX_ITEMS_PER_CALL:
            _refuse(413, {"items": [TOO_MANY_ITEMS]})
        if plainly_new_ids(ids, self.seen):
            self.seen.update(ids)
        else:  # the rules id by id, to name the first id at fault
            try:
                for i, item_id in enumerate(ids, first):
                    check_new_id(i, item_id, self.seen)
            except ma.ValidationError as error:
                _refuse(422, {"items": error.messages})
        self.ids += ids

    def add_features(self, first: int, block: np.ndarray) -> None:
        """Checks a (rows, dim) float block whose first row is row `first` of the call, and copies it."""
        dim, end = block.shape[1], first + len(block)
        if self.matrix is None:
            self.matrix = _reserve(self.expected_rows or self.max_bytes // (4 * dim), dim)
        self.decoded = end * dim * 4
        if self.decoded > self.max_bytes or end > len(self.matrix):
            _refuse(413, {"features": [f"the rows decode to more than the {self.max_bytes} bytes a body may hold"]})
        bad = unfit_rows(block)
        if bad.any():
            self.refuse_row(first + _first(bad), "features", UNFIT)
        self.matrix[first:end] = block

    def add_labels(self, first: int, labels: list, splits: list) -> None:
        g.setdefault("label_rows", [])
        for i, (label, split) in enumerate(zip(labels, splits), first):
            if label is None:
                if split is not None:
                    self.refuse_row(i, "split", "an unlabeled item has no split")
                continue
            try:
                LabelField().deserialize(label)
            except ma.ValidationError as error:
                self.refuse_row(i, "label", error.messages[0])
            self.labels.append({"id": self.ids[i], "label": label, "split": split or "train"})
            g.label_rows.append(i)

    def add_batch(self, batch: pa.RecordBatch) -> None:
        first, m = len(self.ids), batch.num_rows
        self.add_ids(batch.column("id").to_pylist())
        column = batch.column(self.kind)
        if column.null_count:
            self.refuse_row(first + _first(column.is_null().to_numpy(zero_copy_only=False)), self.kind, "missing")
        if self.kind == "text":
            self.decoded += column.nbytes
            if self.decoded > self.max_bytes:
                _refuse(413, {"text": [f"the texts decode to more than the {self.max_bytes} bytes a body may hold"]})
            try:
                self.texts += parse_texts(column.to_pylist())
            except ma.ValidationError as error:
                _refuse(422, {"items": {first + i: messages for i, messages in error.messages.items()}})
        elif m:
            self.add_features(first, self._block(first, column))
        if "label" in batch.schema.names:
            labels = batch.column("label").to_pylist()
            splits = batch.column("split").to_pylist() if "split" in batch.schema.names else [None] * m
            self.add_labels(first, labels, splits)
        elif "split" in batch.schema.names:
            _refuse(422, {"split": ["needs a label column: a split is that of an item's label"]})

    def _block(self, first: int, column: pa.Array) -> np.ndarray:
        """A features column of lists as a (rows, dim) array, its widths checked."""
        m = len(column)
        if pa.types.is_fixed_size_list(column.type):
            dim = column.type.list_size
        else:
            widths = np.diff(column.offsets.to_numpy())
            dim = self.matrix.shape[1] if self.matrix is not None else int(widths[0])
            if first == 0 and dimension_problem(dim):
                self.refuse_row(0, "features", dimension_problem(dim))
            wrong = widths != dim
            if wrong.any():
                i = _first(wrong)
                self.refuse_row(
                    first + i,
                    "features",
                    f"has {widths[i]} values where the first has {dim}: every item needs the same dimension",
                )
        values = column.flatten()
        if values.null_count:
            row = _first(values.is_null().to_numpy(zero_copy_only=False)) // dim
            self.refuse_row(first + row, "features", "must hold numbers only, found null")
        return values.to_numpy(zero_copy_only=False).reshape(m, dim)

    def body(self) -> dict:
        if not self.ids:
            _refuse(422, {"items": ["must hold at least one item; leave items out to create an empty pool"]})
        if self.kind == "text":
            items = ItemBatch(ids=self.ids, texts=self.texts)
        else:
            items = ItemBatch(ids=self.ids, features=self.matrix[: len(self.ids)])
        return {"items": items, **({"labels": self.labels} if self.labels else {})}


# -- multipart: a .npy matrix and its ids ----------------------------------------------------------


def _multipart(create: bool, max_bytes: int) -> dict:
    # Parts sent without a filename are form fields, held in memory: the ids may be a few MB.
    request.max_form_memory_size = max_bytes
    parts = {}
    for name in [*request.form, *request.files]:
        if name not in PARTS:
            _refuse(422, {name: [f"unknown part; the parts are {', '.join(PARTS)}"]})
        values = request.form.getlist(name) + request.files.getlist(name)
        if len(values) > 1 or name in parts:
            _refuse(422, {name: ["appears twice"]})
        parts[name] = values[0]
    if "features" not in parts or isinstance(parts["features"], str):
        _refuse(422, {"features": ["missing: a file part holding a .npy matrix (items x features)"]})
    if "ids" not in parts:
        _refuse(422, {"ids": ["missing: a JSON array of the items' ids, one per row of features"]})
    if OPTIONS in parts and not create:
        _refuse(422, {OPTIONS: ["a pool's options are given when it is created, not with its items"]})
    g.body_hash = _parts_digest(parts)
    options = _options_of(_bytes_of(parts[OPTIONS])) if OPTIONS in parts else {}
    features = parts["features"].stream
    n, dim, read = _npy(features, max_bytes)
    rows = _Rows("features", max_bytes, n)
    rows.add_ids(_json_array(parts["ids"], "ids", n))
    read(rows)
    labels = _json_array(parts["labels"], "labels", n) if "labels" in parts else None
    splits = _json_array(parts["splits"], "splits", n) if "splits" in parts else [None] * n
    if labels is None and "splits" in parts:
        _refuse(422, {"splits": ["needs labels: a split is that of an item's label"]})
    if labels is not None:
        rows.add_labels(0, labels, splits)
    return {**options, **rows.body()}


def _chunks(part) -> Iterable[bytes]:
    if isinstance(part, str):
        yield part.encode("utf-8", "surrogatepass")
        return
    part.stream.seek(0)
    while data := part.stream.read(_READ_BYTES):
        yield data


def _bytes_of(part) -> bytes:
    return b"".join(_chunks(part))


def _parts_digest(parts: dict) -> str:
    """The sha256 of the parts' names and contents in a fixed order: a retry that sends the same parts under
    another multipart boundary is the same body."""
    digest = hashlib.sha256()
    for name in sorted(parts):
        digest.update(name.encode() + b"\0")
        for data in _chunks(parts[name]):
            digest.update(data)
        digest.update(b"\0")
    return digest.hexdigest()


def _json_array(part, name: str, n: int) -> list:
    try:
        values = json.loads(_bytes_of(part))
    except (RecursionError, ValueError):
        _refuse(400, {name: ["must be a JSON array"]})
    if not isinstance(values, list):
        _refuse(422, {name: ["must be a JSON array"]})
    if len(values) != n:
        _refuse(422, {name: [f"has {len(values)} entries for {n} rows of features: give one per row"]})
    return values


def _npy(file, max_bytes: int):
    """The rows and width of a .npy matrix from its header (never unpickling anything), and the function that
    reads its values into a _Rows, a bounded block at a time."""
    file.seek(0)
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
        else:
            raise ValueError(f"format version {version} is not read; numpy.save writes 1.0")
    except (ValueError, TypeError, EOFError, SyntaxError) as error:  # a header numpy cannot parse
        _refuse(400, {"features": [f"is not a readable .npy file: {str(error)[:300]}"]})
    if dtype.hasobject or dtype.kind != "f" or dtype.itemsize not in (4, 8):
        _refuse(422, {"features": [f"must hold float32 or float64 values, not {dtype} (object arrays are refused)"]})
    if len(shape) != 2:
        _refuse(422, {"features": [f"must be a 2-D matrix (items x features), not of shape {shape}"]})
    n, dim = shape
    if n > limits.MAX_ITEMS_PER_CALL:
        _refuse(413, {"items": [TOO_MANY_ITEMS]})
    if dimension_problem(dim):
        _refuse(422, {"features": [dimension_problem(dim)]})
    start = file.tell()
    file.seek(0, 2)
    if file.tell() - start != n * dim * dtype.itemsize:
        _refuse(
            400,
            {
                "features": [
                    f"holds {file.tell() - start} bytes of values where {shape} needs {n * dim * dtype.itemsize}"
                ]
            },
        )
    file.seek(start)

    def read(rows: _Rows) -> None:
        if fortran_order:  # stored column after column: read whole, as the body limit bounds it
            rows.add_features(0, np.frombuffer(file.read(), dtype=dtype).reshape(dim, n).T)
            return
        step = max(1, BATCH_BYTES // (dim * dtype.itemsize))
        for first in range(0, n, step):
            count = min(step, n - first)
            block = np.frombuffer(file.read(count * dim * dtype.itemsize), dtype=dtype).reshape(count, dim)
            rows.add_features(first, block)

    return n, dim, read
