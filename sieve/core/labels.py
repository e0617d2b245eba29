"""Label values: strings or integers, one kind per pool, kept as JSON text in storage."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from sieve.core.errors import InvalidInput
from sieve.limits import MAX_LABEL_LENGTH

Label = str | int


def label_kind(labels: Sequence[Label], field: str = "labels") -> str:
    """'str' or 'int' for a batch of labels that all share one kind."""
    kinds = set()
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise InvalidInput("a label must be a string or an integer", field=f"{field}[{i}].label")
        if isinstance(label, str) and not 0 < len(label) <= MAX_LABEL_LENGTH:
            raise InvalidInput(f"a label must have 1 to {MAX_LABEL_LENGTH} characters", field=f"{field}[{i}].label")
        kinds.add("str" if isinstance(label, str) else "int")
    if len(kinds) > 1:
        raise InvalidInput("labels must be all strings or all integers, not a mix", field=field)
    return kinds.pop() if kinds else ""


def check_allowed(labels: Sequence[Label], classes: Sequence[Label] | None, field: str = "labels") -> None:
    """Rejects labels outside a pool's closed list of classes, naming them."""
    if classes is None:
        return
    allowed = {encode(c) for c in classes}
    for i, label in enumerate(labels):
        if encode(label) not in allowed:
            raise InvalidInput(
                f"label {label!r} is not one of the pool's classes {list(classes)!r}", field=f"{field}[{i}].label"
            )


def encode(label: Label) -> str:
    # JSON keeps 1 and "1" apart, and sorts consistently as the class order of a fitted model.
    return json.dumps(label)


def decode(text: str | bytes) -> Label:
    return json.loads(text)


def decode_all(texts: Iterable[str | bytes]) -> list[Label]:
    return [decode(t) for t in texts]
