"""What one call of `sieve load` carries: items as an Arrow IPC stream.

Columns: `id` (string), either `features` (fixed_size_list<float32>[dim]) or `text` (string), and
optionally `label` (string or int64; null for an item without one) and `split` (`train` or `eval`, for
labeled items). Every call is one stream of one schema, Content-Type `application/vnd.apache.arrow.stream`
(sieve.client.ARROW_STREAM). A create (POST /v1/pools) carries the pool's other fields (name, model,
strategy...) as JSON in the schema's metadata under `sieve`.
"""

from __future__ import annotations

import json

import pyarrow as pa

OPTIONS = "sieve"
"""The schema metadata key of a create's options."""

MESSAGE_BYTES = 4 * 1024 * 1024
"""About what one record batch of a call weighs."""


def body(batch: pa.RecordBatch, options: dict | None = None) -> bytes:
    """The bytes of one call: the batch as an Arrow IPC stream; `options`, a create's fields but items."""
    if options:
        batch = batch.replace_schema_metadata({OPTIONS: json.dumps(options, separators=(",", ":"))})
    # The API decodes a stream a record batch at a time: batches of a few MB keep what it holds at once small.
    step = max(1, MESSAGE_BYTES * batch.num_rows // max(1, batch.nbytes))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        for first in range(0, max(1, batch.num_rows), step):
            writer.write_batch(batch.slice(first, step))
    return sink.getvalue().to_pybytes()
