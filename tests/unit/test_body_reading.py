"""How the API reads a binary body from its request stream: in bounded pieces, each byte in the body's digest."""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import pyarrow as pa

from sieve.service.tabular_bodies import _READ_BYTES, _HashingReader
from tests.helpers import peak_rss_growth_mb


class RecordingStream(io.BytesIO):
    """A request stream that remembers how much each read asked for."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return super().read(size)


def one_batch_stream(rows: int) -> bytes:
    sink = io.BytesIO()
    batch = pa.record_batch({"x": np.arange(rows, dtype=np.float64)})
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def test_a_large_record_batch_is_read_from_the_request_in_bounded_pieces():
    # The server (gunicorn) gathers what one read asks for in a buffer of its own and copies it out: a
    # batch asked for whole would be held three times over.
    body = one_batch_stream(1_000_000)  # one 8 MB message
    stream, digest = RecordingStream(body), hashlib.sha256()
    reader = _HashingReader(stream, digest, len(body))
    table = pa.ipc.open_stream(reader).read_all()
    reader.drain()
    assert np.array_equal(table.column("x").to_numpy(), np.arange(1_000_000, dtype=np.float64))
    assert max(stream.asked) <= _READ_BYTES
    assert digest.hexdigest() == hashlib.sha256(body).hexdigest()


def test_a_body_cut_short_is_returned_as_far_as_it_goes():
    body = one_batch_stream(1000)
    reader = _HashingReader(RecordingStream(body[:-100]), hashlib.sha256(), len(body))
    assert len(reader.read(len(body))) == len(body) - 100
    assert reader.read(10) == b""


def test_a_size_claimed_by_the_body_reserves_nothing_beyond_what_arrives():
    # An Arrow message header may claim any length: the reader asks for it, and only the bytes the request
    # holds are read and kept.
    limit = 256 << 20
    reader = _HashingReader(RecordingStream(b"0123456789"), hashlib.sha256(), limit)
    growth_mb, (first, then) = peak_rss_growth_mb([os.getpid()], lambda: (reader.read(1 << 40), reader.read(limit)))
    assert first == b"0123456789"
    assert then == b""
    assert growth_mb < 16
