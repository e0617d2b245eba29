"""The labeled data a simulation replays: a named benchmark, or a CSV or NPZ file of the user's."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sieve.seed_experiment import seed_data


@dataclass(frozen=True)
class Dataset:
    """Features, labels as codes 0..C-1, and what each code stands for."""

    name: str
    X: np.ndarray
    y: np.ndarray
    classes: list

    @classmethod
    def of(cls, name: str, X, y) -> Dataset:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise ValueError(f"{name}: features must be a non-empty 2-D array with one label per row")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name}: features must be finite numbers")
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{name}: at least two classes are needed")
        return cls(name=name, X=X, y=codes.astype(np.int64), classes=classes.tolist())


def _synth20k():
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=20_000, n_features=50, n_informative=20, n_redundant=10, n_classes=10, random_state=0
    )


def _sklearn(loader_name: str):
    def load():
        import sklearn.datasets

        return getattr(sklearn.datasets, loader_name)(return_X_y=True)

    return load


BUILTIN = {
    "digits": _sklearn("load_digits"),
    "breast_cancer": _sklearn("load_breast_cancer"),
    "wine": _sklearn("load_wine"),
    "iris": _sklearn("load_iris"),
    "seed": seed_data,
    "synth20k": _synth20k,
}


def _from_csv(path: Path, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise ValueError(f"{path}: a header row and at least one data row are needed")
    header, body = rows[0], rows[1:]
    column = len(header) - 1 if label_column is None else _column(header, label_column, path)
    try:
        X = np.array([[float(v) for j, v in enumerate(row) if j != column] for row in body])
    except ValueError as exc:
        raise ValueError(f"{path}: every column but the label must be numeric ({exc})") from None
    return X, np.array([row[column] for row in body])


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise ValueError(f"{path}: no column {name!r}; columns: {', '.join(header)}")
    return header.index(name)


def _from_npz(path: Path, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        key = label_column or "y"
        if "X" not in data or key not in data:
            raise ValueError(f"{path}: needs arrays 'X' and {key!r}; found {', '.join(data.files)}")
        return data["X"], data[key]


def load_dataset(source: str, label_column: str | None = None) -> Dataset:
    """A built-in data set by name, or PATH.csv (label column `label_column`, else the last) or PATH.npz
    (arrays `X` and `label_column`, else `y`)."""
    if source in BUILTIN:
        return Dataset.of(source, *BUILTIN[source]())
    path = Path(source)
    readers = {".csv": _from_csv, ".npz": _from_npz}
    if path.suffix not in readers:
        raise ValueError(f"unknown data set {source!r}: use one of {', '.join(BUILTIN)}, or a .csv or .npz file")
    if not path.is_file():
        raise ValueError(f"no file {source}")
    return Dataset.of(path.stem, *readers[path.suffix](path, label_column))
