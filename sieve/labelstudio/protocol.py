"""Label Studio's ML-backend payloads, read and written as plain data: no Flask, no Redis."""

from __future__ import annotations

import re

import numpy as np

from sieve.core.registry import REGISTRY
from sieve.limits import MAX_FEATURE_DIM, MAX_TEXT_LENGTH

RESULT_TYPE = "choices"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_TASK_ITEM = re.compile(r"0|[1-9][0-9]{0,17}")
_VERSION_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")
_PROJECT = re.compile(r"[0-9]{1,18}(\.[0-9]{1,20})?")
PROJECT_PATTERN = f"^{_PROJECT.pattern}$"
"""Label Studio names a project `<id>.<created unix time>` in setup and predict calls."""


def is_project(value) -> bool:
    return isinstance(value, str) and _PROJECT.fullmatch(value) is not None


def model_version(pool_id: str, ranked_version: int | None) -> str:
    """The name Label Studio knows a pool's ranking by: new with every refresh, unique to the pool."""
    return f"sieve-{pool_id[:8]}-{ranked_version or 0}"


def ranked_version_of(pool_id: str, name) -> int | None:
    """The ranked version a model version of this pool's is named after; None for a name Sieve did not give
    this pool (another backend's, a person's, another pool's)."""
    prefix = f"sieve-{pool_id[:8]}-"
    if not isinstance(name, str) or not name.startswith(prefix):
        return None
    number = name[len(prefix) :]
    return int(number) if _VERSION_NUMBER.fullmatch(number) else None


def project_id(value) -> int | None:
    """Label Studio's project id from `"<id>.<created unix time>"`, an int, or a webhook's project object."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**18 else None
    if is_project(value):
        return int(value.split(".", 1)[0])
    return None


def task_id(value) -> str | None:
    """A task's id as a Sieve item id (its decimal text), or None when it is not a task id (Label Studio's
    are 64-bit: a longer one would make an item id past MAX_ID_LENGTH)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**18:
        return None
    return str(value)


def task_of_item(item_id: str) -> int | None:
    """The Label Studio task an item stands for (its id is the task's), or None for an item added otherwise."""
    return int(item_id) if _TASK_ITEM.fullmatch(item_id) else None


def task_text(task, field: str) -> str | None:
    """The text a task shows in its `$field`, or None when the task has no such text, or one longer than
    MAX_TEXT_LENGTH: such a task is one Sieve cannot read, as /v1 refuses such a text."""
    data = task.get("data") if isinstance(task, dict) else None
    value = data.get(field) if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH else None


def task_vector(task, field: str, dim: int | None = None) -> np.ndarray | None:
    """The vector a task carries in `data[field]` as float32, or None when the task has none Sieve can read:
    not a list of 1 to MAX_FEATURE_DIM finite numbers within float32 range, as /v1 requires of features,
    or (with `dim`) not of the pool's dimension. Such a task is one Sieve cannot read, like one without text."""
    data = task.get("data") if isinstance(task, dict) else None
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, list) or not 0 < len(value) <= MAX_FEATURE_DIM or (dim and len(value) != dim):
        return None
    if not all(type(x) in (int, float) for x in value):  # bools, strings and nested lists are not numbers
        return None
    try:
        row = np.asarray(value, dtype=np.float64)
    except OverflowError:  # an int past float range
        return None
    if not np.isfinite(row).all() or np.abs(row).max() > _FLOAT32_MAX:
        return None
    return row.astype(np.float32)


def carries(task, field: str) -> bool:
    """Whether a task's data has `field` at all, readable or not."""
    data = task.get("data") if isinstance(task, dict) else None
    return isinstance(data, dict) and field in data


def annotation_choice(annotation, from_name: str) -> str | None:
    """The label an annotation gives: the first choice of its Choices result (None for a cancelled
    annotation or one without choices). Sieve's pools are single-label: of several choices, the first."""
    if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
        return None
    results = annotation.get("result")
    if not isinstance(results, list):
        return None
    candidates = [r for r in results if isinstance(r, dict) and r.get("type") == RESULT_TYPE]
    # The result of our Choices tag first; a config with several Choices tags labels other things too.
    candidates.sort(key=lambda r: r.get("from_name") != from_name)
    for result in candidates:
        value = result.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], str) and choices[0]:
            return choices[0]
    return None


def confidence(strategy: str, scores: np.ndarray, n_classes: int) -> np.ndarray:
    """Sieve's informativeness (higher first) as Label Studio's score (lower first), in [0, 1]:
    Label Studio's uncertainty sampling hands out the task with the lowest score, so the order is Sieve's.
    The scores of a strategy with a known bound (its registry entry's score_bound) are scaled by it; any
    other strategy's order becomes evenly spaced scores, the first 0."""
    scores = np.asarray(scores, dtype=np.float64)
    entry = REGISTRY.get(strategy)
    if entry is not None and entry.score_bound is not None:
        return np.clip(1.0 - scores / entry.score_bound(n_classes), 0.0, 1.0)
    places = np.empty(len(scores))
    places[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    return places / max(len(scores) - 1, 1)


def prediction(label, score: float | None, model_version: str, from_name: str, to_name: str) -> dict:
    """One task's prediction in the shape Label Studio stores: a choices result (none without a model)."""
    result = (
        []
        if label is None
        else [{"from_name": from_name, "to_name": to_name, "type": RESULT_TYPE, "value": {"choices": [str(label)]}}]
    )
    answer = {"result": result, "model_version": model_version}
    if score is not None:
        answer["score"] = float(score)
    return answer
