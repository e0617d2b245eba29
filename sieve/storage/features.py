"""Feature rows kept as raw little-endian float32 bytes, split into fixed-size chunks."""
from __future__ import annotations

import numpy as np
from redis import Redis

from ..limits import ROWS_PER_CHUNK
from .keys import PoolKeys

DTYPE = np.dtype("<f4")


def chunk_payloads(first_row: int, features: np.ndarray) -> list[tuple[int, bytes]]:
    """Splits rows that start at first_row into (chunk index, bytes to append) pairs."""
    payloads = []
    row, done = first_row, 0
    while done < len(features):
        chunk = row // ROWS_PER_CHUNK
        room = (chunk + 1) * ROWS_PER_CHUNK - row
        part = features[done:done + room]
        payloads.append((chunk, np.ascontiguousarray(part, dtype=DTYPE).tobytes()))
        row += len(part)
        done += len(part)
    return payloads


def read_rows(redis: Redis, keys: PoolKeys, start: int, stop: int, dim: int) -> np.ndarray:
    """Rows [start, stop) as a float32 array, read chunk by chunk."""
    out = np.empty((max(stop - start, 0), dim), dtype=DTYPE)
    row_bytes = dim * DTYPE.itemsize
    row = start
    while row < stop:
        chunk = row // ROWS_PER_CHUNK
        end = min(stop, (chunk + 1) * ROWS_PER_CHUNK)
        offset = (row - chunk * ROWS_PER_CHUNK) * row_bytes
        data = redis.getrange(keys.chunk(chunk), offset, offset + (end - row) * row_bytes - 1)
        if len(data) != (end - row) * row_bytes:
            raise RuntimeError(f"pool {keys.pool_id}: feature chunk {chunk} is shorter than its rows")
        out[row - start:end - start] = np.frombuffer(data, dtype=DTYPE).reshape(-1, dim)
        row = end
    return out


def read_selected_rows(redis: Redis, keys: PoolKeys, rows: list[int], dim: int) -> np.ndarray:
    """The given rows, in order, in one round trip."""
    row_bytes = dim * DTYPE.itemsize
    pipe = redis.pipeline(transaction=False)
    for row in rows:
        chunk, local = divmod(row, ROWS_PER_CHUNK)
        pipe.getrange(keys.chunk(chunk), local * row_bytes, (local + 1) * row_bytes - 1)
    data = b"".join(pipe.execute())
    return np.frombuffer(data, dtype=DTYPE).reshape(len(rows), dim)
