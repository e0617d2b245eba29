"""Feature rows kept as raw little-endian float32 bytes, split into chunks of a pool's `chunk_rows` rows.

A pool's rows per chunk are fixed when its first rows are stored (meta field `chunk_rows`), derived from
its dimension so that no chunk exceeds MAX_CHUNK_BYTES; readers and writers take them from the meta.
"""
from __future__ import annotations

import numpy as np
from redis import Redis

from ..limits import MAX_CHUNK_BYTES, ROWS_PER_CHUNK
from .keys import PoolKeys

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


def chunk_payloads(first_row: int, features: np.ndarray, chunk_rows: int) -> list[tuple[int, bytes]]:
    """Splits rows that start at first_row into (chunk index, bytes to append) pairs."""
    payloads = []
    row, done = first_row, 0
    while done < len(features):
        chunk = row // chunk_rows
        room = (chunk + 1) * chunk_rows - row
        part = features[done:done + room]
        payloads.append((chunk, np.ascontiguousarray(part, dtype=DTYPE).tobytes()))
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
        out[row - start:end - start] = np.frombuffer(data, dtype=DTYPE).reshape(-1, dim)
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
