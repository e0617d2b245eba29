"""Feature rows kept as raw little-endian bytes, split into chunks of a pool's `chunk_rows` rows: dense
float32 rows for a pool of feature vectors, sparse rows for a text pool.

A pool's rows per chunk are fixed when its first rows are stored (meta field `chunk_rows`), derived from
its dimension so that no chunk exceeds MAX_CHUNK_BYTES; readers and writers take them from the meta.
"""

from __future__ import annotations

import numpy as np
from redis import Redis
from scipy import sparse

from sieve.limits import MAX_CHUNK_BYTES, MAX_TEXT_FEATURES, ROWS_PER_CHUNK
from sieve.storage.keys import PoolKeys

DTYPE = np.dtype("<f4")


def rows_per_chunk(dim: int) -> int:
    """Rows per chunk for a new pool of this dimension: as many as fit in MAX_CHUNK_BYTES."""
    return max(1, min(ROWS_PER_CHUNK, MAX_CHUNK_BYTES // (max(dim, 1) * DTYPE.itemsize)))


def stored_chunk_rows(value, n_items: int, dim: int) -> int:
    """The rows per chunk of a pool, from its meta field: a pool that has none yet and no rows gets the
    geometry of its dimension; one with rows but no field was stored with the fixed ROWS_PER_CHUNK."""
    if value:
        return int(value)
    return rows_per_chunk(dim) if n_items == 0 else ROWS_PER_CHUNK


def chunk_count(n_items: int, chunk_rows: int) -> int:
    return -(-n_items // chunk_rows)


def chunk_payloads(first_row: int, features: np.ndarray, chunk_rows: int) -> list[tuple[int, memoryview]]:
    """Splits rows that start at first_row into (chunk index, bytes to append) pairs.

    The bytes are views of the rows, not copies, when they are C-contiguous float32 already: redis-py sends a
    memoryview as it is, so a large batch is not held twice on its way to Redis."""
    features = np.ascontiguousarray(features, dtype=DTYPE)
    payloads = []
    row, done = first_row, 0
    while done < len(features):
        chunk = row // chunk_rows
        room = (chunk + 1) * chunk_rows - row
        part = features[done : done + room]
        payloads.append((chunk, memoryview(part).cast("B")))
        row += len(part)
        done += len(part)
    return payloads


def read_rows(redis: Redis, keys: PoolKeys, start: int, stop: int, dim: int, chunk_rows: int) -> np.ndarray:
    """Rows [start, stop) as a float32 array, read chunk by chunk."""
    out = np.empty((max(stop - start, 0), dim), dtype=DTYPE)
    row_bytes = dim * DTYPE.itemsize
    row = start
    while row < stop:
        chunk = row // chunk_rows
        end = min(stop, (chunk + 1) * chunk_rows)
        offset = (row - chunk * chunk_rows) * row_bytes
        data = redis.getrange(keys.chunk(chunk), offset, offset + (end - row) * row_bytes - 1)
        if len(data) != (end - row) * row_bytes:
            raise RuntimeError(f"pool {keys.pool_id}: feature chunk {chunk} is shorter than its rows")
        out[row - start : end - start] = np.frombuffer(data, dtype=DTYPE).reshape(-1, dim)
        row = end
    return out


def read_selected_rows(redis: Redis, keys: PoolKeys, rows: list[int], dim: int, chunk_rows: int) -> np.ndarray:
    """The given rows, in order, in one round trip."""
    row_bytes = dim * DTYPE.itemsize
    pipe = redis.pipeline(transaction=False)
    for row in rows:
        chunk, local = divmod(row, chunk_rows)
        pipe.getrange(keys.chunk(chunk), local * row_bytes, (local + 1) * row_bytes - 1)
    data = b"".join(pipe.execute())
    return np.frombuffer(data, dtype=DTYPE).reshape(len(rows), dim)


# -- text pools: sparse rows ---------------------------------------------------------------------------
# A text pool's chunk is three strings, appended together: the non-zero count of each row (COUNT), then
# the column index (INDEX) and the value (DTYPE) of each non-zero, row after row. A row costs 2 bytes plus
# 6 per distinct term; column indices fit in 16 bits since a text pool has at most MAX_TEXT_FEATURES
# columns.

SPARSE = "csr"
"""The meta's `layout` of a pool stored as sparse rows; a pool without the field is stored dense."""

COUNT = np.dtype("<u2")
INDEX = np.dtype("<u2")
assert MAX_TEXT_FEATURES <= np.iinfo(INDEX).max + 1 and MAX_TEXT_FEATURES <= np.iinfo(COUNT).max


def sparse_payloads(first_row: int, rows: sparse.csr_matrix, chunk_rows: int) -> list[tuple[int, bytes, bytes, bytes]]:
    """Splits CSR rows that start at first_row into (chunk index, counts, indices, values) to append."""
    rows = rows.tocsr()
    rows.sort_indices()
    payloads = []
    row, done = first_row, 0
    while done < rows.shape[0]:
        chunk = row // chunk_rows
        end = done + min((chunk + 1) * chunk_rows - row, rows.shape[0] - done)
        lo, hi = rows.indptr[done], rows.indptr[end]
        payloads.append(
            (
                chunk,
                np.diff(rows.indptr[done : end + 1]).astype(COUNT).tobytes(),
                rows.indices[lo:hi].astype(INDEX).tobytes(),
                rows.data[lo:hi].astype(DTYPE).tobytes(),
            )
        )
        row += end - done
        done = end
    return payloads


def _csr(counts: np.ndarray, indices: bytes, values: bytes, dim: int) -> sparse.csr_matrix:
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    # Copies: arrays over Redis's reply bytes would be read-only.
    return sparse.csr_matrix(
        (np.frombuffer(values, dtype=DTYPE).copy(), np.frombuffer(indices, dtype=INDEX).astype(np.int32), indptr),
        shape=(len(counts), dim),
    )


def read_sparse_rows(
    redis: Redis, keys: PoolKeys, start: int, stop: int, dim: int, chunk_rows: int
) -> sparse.csr_matrix:
    """Rows [start, stop) of a text pool as a float32 CSR matrix, two round trips per chunk."""
    parts = []
    row = start
    while row < stop:
        chunk = row // chunk_rows
        end = min(stop, (chunk + 1) * chunk_rows)
        counts_key, indices_key, values_key = keys.sparse_chunk(chunk)
        local, local_end = row - chunk * chunk_rows, end - chunk * chunk_rows
        counts = np.frombuffer(redis.getrange(counts_key, 0, local_end * COUNT.itemsize - 1), dtype=COUNT)
        if len(counts) != local_end:
            raise RuntimeError(f"pool {keys.pool_id}: feature chunk {chunk} is shorter than its rows")
        first, count = int(counts[:local].sum(dtype=np.int64)), int(counts[local:].sum(dtype=np.int64))
        pipe = redis.pipeline(transaction=False)
        pipe.getrange(indices_key, first * INDEX.itemsize, (first + count) * INDEX.itemsize - 1)
        pipe.getrange(values_key, first * DTYPE.itemsize, (first + count) * DTYPE.itemsize - 1)
        indices, values = pipe.execute() if count else (b"", b"")  # GETRANGE key 0 -1 is the whole string
        if len(values) != count * DTYPE.itemsize:
            raise RuntimeError(f"pool {keys.pool_id}: feature chunk {chunk} is shorter than its rows")
        parts.append(_csr(counts[local:], indices, values, dim))
        row = end
    return sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, dim), dtype=DTYPE)


def read_selected_sparse_rows(
    redis: Redis, keys: PoolKeys, rows: list[int], dim: int, chunk_rows: int
) -> sparse.csr_matrix:
    """The given rows of a text pool, in order, in two round trips."""
    places = [divmod(row, chunk_rows) for row in rows]
    chunks = sorted({chunk for chunk, _ in places})
    pipe = redis.pipeline(transaction=False)
    for chunk in chunks:
        pipe.get(keys.sparse_chunk(chunk)[0])
    # Each chunk's row offsets into its indices and values, from its counts.
    starts = {
        chunk: np.concatenate([[0], np.cumsum(np.frombuffer(data or b"", dtype=COUNT), dtype=np.int64)])
        for chunk, data in zip(chunks, pipe.execute())
    }
    counts = np.array([starts[c][local + 1] - starts[c][local] for c, local in places], dtype=np.int64)
    for (chunk, local), count in zip(places, counts):
        if count == 0:
            continue  # GETRANGE key 0 -1 would answer the whole string
        first, last = int(starts[chunk][local]), int(starts[chunk][local + 1])
        _, indices_key, values_key = keys.sparse_chunk(chunk)
        pipe.getrange(indices_key, first * INDEX.itemsize, last * INDEX.itemsize - 1)
        pipe.getrange(values_key, first * DTYPE.itemsize, last * DTYPE.itemsize - 1)
    data = pipe.execute() if counts.any() else []
    if [len(d) for d in data[1::2]] != (counts[counts > 0] * DTYPE.itemsize).tolist():
        raise RuntimeError(f"pool {keys.pool_id}: a feature chunk is shorter than its rows")
    return _csr(counts, b"".join(data[0::2]), b"".join(data[1::2]), dim)
