"""`sieve load`: streams a local file into a pool, in calls of bounded size, resumably.

Resuming. Re-running the same load after an interruption sends each item once:

- The pool. `--pool ID` names it. `--name N` looks for the caller's pool named N (GET /v1/pools, page by
  page) and loads into it; only when there is none does the first call create one (POST /v1/pools with the
  first batch, the pool's options in the stream's metadata), under an Idempotency-Key derived from that
  body, so that a create whose answer was lost makes one pool when retried. Several pools of that name:
  the load stops and asks for --pool.
- The items. Every call carries an Idempotency-Key derived from the pool id and the call's body (SHA-256):
  re-reading the same file gives the same batches and so the same keys, and a call whose answer was lost is
  answered from the API's record instead of applied twice (for 24 hours). Before sending a batch to a pool
  that held items when the load started, the loader asks which of the batch's ids the pool already has
  (POST /v1/pools/{id}/items/lookup, ids only) and leaves those out; a 409 naming an id already present
  (another writer got in first) does the same for that batch (up to DUPLICATE_RETRIES times) and for
  every batch after it. So a load interrupted at any point, or a file that repeats ids of an earlier load,
  sends only what is missing, and the ids left out are counted as skipped.
- The labels go with their items, taught in the same step by the create or addition that carries them
  (a call carries at most MAX_LABELS_PER_CALL of them: a batch with more is sent as several calls). An
  item left out as present is left out with its label: a rerun never overwrites a label the pool holds.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from sieve.client import ApiError, Client
from sieve.limits import MAX_ITEMS_PER_CALL, MAX_LABELS_PER_CALL
from sieve.load import wire
from sieve.load.formats import FileError, Source, rebatch, to_wire

CALL_BYTES = 24 * 1024 * 1024
"""What one call should weigh when --batch-items is not given: large enough that the per-call cost is
small, well below the API's default body limit (64 MiB)."""

DUPLICATE_RETRIES = 3
"""How many times a batch refused for ids already present is looked up and sent again."""

PEEK_ROWS = 1024
"""Rows read to measure what an item weighs, before the batch size is chosen."""


class LoadError(Exception):
    """The load stopped: says where in the file and why (the API's problem detail, or the file's fault)."""


@dataclass
class LoadResult:
    pool_id: str
    sent: int
    skipped: int
    taught: int
    seconds: float
    created: bool

    @property
    def items_per_second(self) -> float:
        return (self.sent + self.skipped) / self.seconds if self.seconds > 0 else 0.0


def rows_per_call(source: Source) -> int:
    """Items per call so that a call weighs about CALL_BYTES (from the file's first rows as sent)."""
    first = next(iter(source.batches(PEEK_ROWS)), None)
    if first is None or first.num_rows == 0:
        return MAX_ITEMS_PER_CALL
    sample = to_wire(first.slice(0, PEEK_ROWS), 0)
    per_item = max(1, len(wire.body(sample)) // sample.num_rows)
    return max(1, min(MAX_ITEMS_PER_CALL, CALL_BYTES // per_item))


def find_pool(client: Client, name: str) -> str | None:
    """The caller's pool named `name`; None when there is none."""
    named = [pool["pool_id"] for pool in client.iter_pools() if pool.get("name") == name]
    if len(named) > 1:
        raise LoadError(f"{len(named)} pools are named {name!r} ({', '.join(named)}): choose one with --pool")
    return named[0] if named else None


def load(
    client: Client,
    source: Source,
    pool_id: str | None = None,
    *,
    create: dict | None = None,
    batch_items: int | None = None,
    quiet: bool = False,
) -> LoadResult:
    """Sends every item of `source`, `batch_items` per call (by default about CALL_BYTES): to the pool
    `pool_id`, or, without one, to a pool its first call creates with the fields `create` (name, model...)."""
    started = time.monotonic()
    rows = batch_items or rows_per_call(source)
    # A pool that held nothing when the load began holds nothing of this file but what this load sends: no
    # lookup is needed until a 409 says another writer got in.
    lookup = pool_id is not None and client.status(pool_id)["n_items"] > 0
    created = pool_id is None
    sent = taught = first_row = 0
    with tqdm(total=source.total, unit="items", unit_scale=True, disable=True if quiet else None) as bar:
        for raw in rebatch(source.batches(rows), rows):
            try:
                batch = to_wire(raw, first_row)
            except FileError as error:
                raise LoadError(f"{source.path}: {error}") from None
            for call in _Call.split(batch, first_row):
                for attempt in range(1, DUPLICATE_RETRIES + 2):
                    if lookup:
                        call.leave_out(client.present_ids(pool_id, call.batch.column("id").to_pylist()))
                    try:
                        if pool_id is None:
                            pool_id = _create(client, call.batch, create or {})
                        elif call.batch.num_rows:
                            _send(client, pool_id, call.batch)
                        break
                    except ApiError as error:
                        # Ids already present: another writer got in (since the lookup, or the load began).
                        if pool_id is None or not _duplicate_ids(error) or attempt > DUPLICATE_RETRIES:
                            raise LoadError(call.where(source, error)) from None
                        lookup = True
                sent += call.batch.num_rows
                taught += len(call.label_rows)
            first_row += raw.num_rows
            bar.update(raw.num_rows)
    skipped = first_row - sent
    if pool_id is None:  # an empty file: the pool is made all the same, empty
        options = create or {}
        key = _key(b"create\0", json.dumps(options, sort_keys=True).encode())
        pool_id = client.create_pool(**options, idempotency_key=key)["pool_id"]
    return LoadResult(pool_id, sent, skipped, taught, time.monotonic() - started, created)


class _Call:
    """One call's rows on their way, and where each of them and of its labels is in the file."""

    def __init__(self, batch: pa.RecordBatch, rows: np.ndarray):
        self.batch = batch
        self.rows = rows  # the file row of each row of the batch

    @classmethod
    def split(cls, batch: pa.RecordBatch, first_row: int) -> list[_Call]:
        """The batch as calls of at most MAX_LABELS_PER_CALL labels each (a call's label limit), in order."""
        rows = first_row + np.arange(batch.num_rows)
        if "label" not in batch.schema.names:
            return [cls(batch, rows)]
        labeled = np.cumsum(batch.column("label").is_valid().to_numpy(zero_copy_only=False))
        # Cut before the row that carries label number MAX_LABELS_PER_CALL + 1, 2 x MAX + 1...
        cuts = np.searchsorted(labeled, np.arange(MAX_LABELS_PER_CALL, labeled[-1], MAX_LABELS_PER_CALL), "right")
        bounds = [0, *cuts.tolist(), batch.num_rows]
        return [cls(batch.slice(lo, hi - lo), rows[lo:hi]) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]

    @property
    def label_rows(self) -> np.ndarray:
        """The file rows of the labels this call sends, in the order the API numbers them (labels[i])."""
        if "label" not in self.batch.schema.names:
            return self.rows[:0]
        return self.rows[self.batch.column("label").is_valid().to_numpy(zero_copy_only=False)]

    def leave_out(self, present: list[str]) -> None:
        """Drops the items the pool holds already, their labels with them."""
        if present:
            keep = pc.invert(pc.is_in(self.batch.column("id"), value_set=pa.array(present, pa.string())))
            self.batch = self.batch.filter(keep)
            self.rows = self.rows[keep.to_numpy(zero_copy_only=False)]

    def where(self, source: Source, error: ApiError) -> str:
        """The API's problem (its detail names the field at fault), with the row of the file it names."""
        field = error.field or ""
        place = f"rows {self.rows[0]}-{self.rows[-1]}" if len(self.rows) else "a batch"
        for prefix, rows in (("items[", self.rows), ("labels[", self.label_rows)):
            index = field[len(prefix) : field.find("]")] if field.startswith(prefix) else ""
            if index.isdigit() and int(index) < len(rows):
                place = f"row {int(rows[int(index)])}"
        return f"{source.path}: {place}: {error.said}"


def _key(*parts: bytes) -> str:
    """An Idempotency-Key named by what the call sends: the same call made again makes the same key."""
    return "load-" + hashlib.sha256(b"".join(parts)).hexdigest()[:40]


def _create(client: Client, batch: pa.RecordBatch, options: dict) -> str:
    body = wire.body(batch, options)
    return client.create_pool_arrow(body, idempotency_key=_key(b"create\0", body))["pool_id"]


def _send(client: Client, pool_id: str, batch: pa.RecordBatch) -> None:
    body = wire.body(batch)
    client.add_items_arrow(pool_id, body, idempotency_key=_key(pool_id.encode(), b"\0", body))


def _duplicate_ids(error: ApiError) -> bool:
    return error.status == 409 and (error.field or "").endswith(".id")
