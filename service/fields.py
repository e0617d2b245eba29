"""Marshmallow fields that validate large numeric payloads in bulk with numpy."""

from __future__ import annotations

import re
from itertools import chain

import marshmallow as ma
import numpy as np

from sieve import limits
from sieve.core.items import ItemBatch

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
NOT_STORABLE = "must be valid Unicode text (no lone surrogates)"


UNFIT = "must hold finite numbers within float32 range (no NaN or infinity)"
"""What is wrong with a row that holds NaN, an infinity or a value past float32's range."""


def dimension_problem(dim: int) -> str | None:
    """Why rows of `dim` values cannot be stored, or None."""
    if dim == 0:
        return "must have at least one value"
    if dim > limits.MAX_FEATURE_DIM:
        return f"has {dim} values; the most allowed is {limits.MAX_FEATURE_DIM}"
    return None


def unfit_rows(matrix: np.ndarray) -> np.ndarray:
    """Which rows of a float matrix hold a value that is not finite or lies beyond float32's range."""
    bad = ~np.isfinite(matrix)
    if matrix.dtype != np.float32:
        bad |= np.abs(matrix) > _FLOAT32_MAX
    return bad.any(axis=1)


def parse_matrix(rows, path: str, what: str = "features") -> np.ndarray:
    """A list of equal-length lists of finite numbers as a float32 (n, d) array.

    Errors are raised as {row: {what: [message]}} so that they name the row, e.g. items[3].features.
    """

    def at(i: int, message: str):
        return ma.ValidationError({i: {what: [message]} if what else [message]})

    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise at(i, "must be a list of numbers")
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    dim = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != dim:
            raise at(i, f"has {len(row)} values where the first has {dim}: every item needs the same dimension")
    if dimension_problem(dim):
        raise at(0, dimension_problem(dim))
    # Types are checked before numpy sees the rows: it would take JSON true/false for 1/0.
    if not set(map(type, chain.from_iterable(rows))) <= {int, float}:
        for i, row in enumerate(rows):
            for value in row:
                if type(value) not in (int, float):
                    raise at(i, f"must hold numbers only, found {value!r:.40}")
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:  # an integer beyond float64, e.g. 1 followed by 400 zeros
        bad_rows = [not all(abs(v) <= _FLOAT32_MAX for v in row) for row in rows]
    else:
        bad_rows = unfit_rows(matrix)
    if any(bad_rows):
        raise at(int(np.flatnonzero(bad_rows)[0]), UNFIT)
    return matrix.astype(np.float32)


def id_problem(item_id) -> str | None:
    """Why `item_id` cannot name an item, or None: the same rules for every body that carries items."""
    if not isinstance(item_id, str) or not 0 < len(item_id) <= limits.MAX_ID_LENGTH:
        return f"must be a string of 1 to {limits.MAX_ID_LENGTH} characters"
    if not item_id.isascii() and _SURROGATE.search(item_id):
        return NOT_STORABLE
    return None


def check_new_id(i: int, item_id, seen: set) -> None:
    """Refuses an item id that is malformed or repeats one of the same call, naming `items[i].id`."""
    problem = id_problem(item_id)
    if problem is None and item_id in seen:
        problem = f"duplicate id {item_id!r} in this request"
    if problem:
        raise ma.ValidationError({i: {"id": [problem]}})
    seen.add(item_id)


def plainly_new_ids(ids: list, seen: set) -> bool:
    """Whether every id passes check_new_id's rules, checked a whole batch at a time: ASCII strings of an
    allowed length, none repeated. Checking 95,000 ids one by one took a fifth of a large call's time."""
    if not ids or not all(type(item_id) is str for item_id in ids):
        return not ids
    fresh = set(ids)
    return (
        len(fresh) == len(ids)
        and seen.isdisjoint(fresh)
        and all(map(str.isascii, ids))
        and 0 < min(map(len, ids))
        and max(map(len, ids)) <= limits.MAX_ID_LENGTH
    )


def storable(text: str) -> None:
    """Rejects what JSON can carry but UTF-8, and so Redis, cannot: a lone surrogate such as "\\ud800"."""
    if not text.isascii() and _SURROGATE.search(text):
        raise ma.ValidationError(NOT_STORABLE)


class ItemSchema(ma.Schema):
    class Meta:
        description = "An item: `features` (a pool of feature vectors) or `text` (a text pool), never both."

    id = ma.fields.String(required=True, validate=ma.validate.Length(1, limits.MAX_ID_LENGTH))
    features = ma.fields.List(ma.fields.Float(allow_nan=False), validate=ma.validate.Length(1, limits.MAX_FEATURE_DIM))
    text = ma.fields.String(validate=ma.validate.Length(0, limits.MAX_TEXT_LENGTH))


def parse_texts(values, what: str = "text") -> list[str]:
    """Texts of a request, each a storable string within MAX_TEXT_LENGTH; errors name the entry."""

    def at(i: int, message: str):
        return ma.ValidationError({i: {what: [message]} if what else [message]})

    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise at(i, "must be a string")
        if len(value) > limits.MAX_TEXT_LENGTH:
            raise at(i, f"has {len(value)} characters; the most allowed is {limits.MAX_TEXT_LENGTH}")
        if not value.isascii() and _SURROGATE.search(value):
            raise at(i, NOT_STORABLE)
    return list(values)


TOO_MANY_ITEMS = f"at most {limits.MAX_ITEMS_PER_CALL} items per call; send more with POST /v1/pools/{{pool_id}}/items"


class ItemIdsField(ma.fields.List):
    """1 to `most` item ids, checked in one pass rather than field by field: a lookup carries up to
    MAX_ITEMS_PER_CALL of them."""

    def __init__(self, most: int, **kwargs):
        # The inner field's rules are checked in _deserialize; given here, they are documented too.
        inner = ma.fields.String(validate=ma.validate.Length(1, limits.MAX_ID_LENGTH))
        super().__init__(inner, validate=ma.validate.Length(1, most), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        if not isinstance(value, list):
            raise ma.ValidationError("must be a list of ids")
        for i, item_id in enumerate(value):
            problem = id_problem(item_id)
            if problem:
                raise ma.ValidationError({i: [problem]})
        return value


class ItemsField(ma.fields.List):
    """A list of items, validated as one float32 matrix rather than value by value."""

    def __init__(self, **kwargs):
        super().__init__(
            ma.fields.Nested(ItemSchema), validate=ma.validate.Length(max=limits.MAX_ITEMS_PER_CALL), **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs) -> ItemBatch:
        if isinstance(value, ItemBatch):  # a binary body's rows, read and checked by service.tabular_bodies
            return value
        if not isinstance(value, list):
            raise ma.ValidationError("must be a list of items")
        if not value:
            # An empty batch has no dimension to give the pool, which would stay stuck at 0 features.
            raise ma.ValidationError("must hold at least one item; leave items out to create an empty pool")
        if len(value) > limits.MAX_ITEMS_PER_CALL:
            raise ma.ValidationError(TOO_MANY_ITEMS)
        ids, seen = [], set()
        kind = "text" if isinstance(value[0], dict) and "text" in value[0] else "features"
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ma.ValidationError({i: ["must be an object with id and features (or text)"]})
            unknown = set(item) - {"id", "features", "text"}
            if unknown:
                raise ma.ValidationError({i: {sorted(unknown)[0]: ["unknown field"]}})
            item_id = item.get("id")
            check_new_id(i, item_id, seen)
            ids.append(item_id)
            if kind not in item:
                other = "text" if kind == "features" else "features"
                raise ma.ValidationError(
                    {
                        i: {
                            kind: [
                                f"missing: the items of one call carry all {kind} or all {other}"
                                if other in item
                                else "missing"
                            ]
                        }
                    }
                )
            if len(item) > 2:
                raise ma.ValidationError({i: {"text": ["give features or text, not both"]}})
        if kind == "text":
            return ItemBatch(ids=ids, texts=parse_texts([item["text"] for item in value]))
        return ItemBatch(ids=ids, features=parse_matrix([item["features"] for item in value], "items"))


class MatrixField(ma.fields.List):
    """A list of feature rows, validated in bulk."""

    def __init__(self, **kwargs):
        super().__init__(
            ma.fields.List(ma.fields.Float(allow_nan=False)),
            validate=ma.validate.Length(1, limits.MAX_PREDICT_ROWS),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs) -> np.ndarray:
        if not isinstance(value, list) or not value:
            raise ma.ValidationError("must be a non-empty list of feature rows")
        if len(value) > limits.MAX_PREDICT_ROWS:
            raise ma.ValidationError(f"at most {limits.MAX_PREDICT_ROWS} rows per call")
        return parse_matrix(value, "features", what="")


class TextsField(ma.fields.List):
    """A list of texts to predict, validated in bulk."""

    def __init__(self, **kwargs):
        super().__init__(
            ma.fields.String(validate=ma.validate.Length(0, limits.MAX_TEXT_LENGTH)),
            validate=ma.validate.Length(1, limits.MAX_PREDICT_ROWS),
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        if not isinstance(value, list) or not value:
            raise ma.ValidationError("must be a non-empty list of texts")
        if len(value) > limits.MAX_PREDICT_ROWS:
            raise ma.ValidationError(f"at most {limits.MAX_PREDICT_ROWS} texts per call")
        return parse_texts(value, what="")


class LabelField(ma.fields.Field):
    """A class label: a string or an integer (not a boolean, not a float)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ma.ValidationError("must be a string or an integer")
        if isinstance(value, str) and not 0 < len(value) <= limits.MAX_LABEL_LENGTH:
            raise ma.ValidationError(f"must have 1 to {limits.MAX_LABEL_LENGTH} characters")
        if isinstance(value, str):
            storable(value)
        if isinstance(value, int) and abs(value) > 2**53:
            raise ma.ValidationError("integer labels must lie within ±2**53")
        return value


class StrictBoolean(ma.fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 1, "yes" or "on", which JSON clients never mean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value
