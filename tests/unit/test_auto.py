"""The default strategy against Brinker's (2003) rule, worked out by hand."""
import numpy as np

from sieve.core.auto import diverse_margin
from sieve.core.selection import Candidates, select

# Rows: 0 labeled at (2, 0); 1 parallel to it, 2 and 3 at right angles, 4 opposite. The features'
# mean is (0, 0), so the angles are those of the rows as written.
FEATURES = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-3.0, 0.0]])
# Margin scores 1 - (p1 - p2): row 1: 1.0, row 2: 0.9, row 3: 0.8, row 4: 0.2.
PROBA = np.array([[1.0, 0.0], [0.5, 0.5], [0.55, 0.45], [0.6, 0.4], [0.9, 0.1]])
UNLABELED = np.array([1, 2, 3, 4])


def test_the_least_sure_row_waits_when_it_points_where_a_labeled_row_does():
    # Step 1: 0.5*1.0 - 0.5*1 = 0 (row 1), 0.45 - 0 (row 2), 0.40 - 0 (row 3), 0.10 - 0.5 (row 4): row 2.
    # Step 2: row 3 is opposite row 2 (|cos| = 1), so row 1: 0, row 3: 0.40 - 0.5, row 4: 0.10 - 0.5: row 1.
    # Then row 3 (-0.10) before row 4 (-0.40).
    assert diverse_margin(PROBA, FEATURES, UNLABELED, np.array([0]), 4).tolist() == [2, 1, 3, 4]


def test_without_labeled_rows_the_first_pick_is_the_least_sure():
    batch = diverse_margin(PROBA, FEATURES, UNLABELED, np.array([], dtype=np.int64), 2)
    # Row 1 first (margin 1.0, nothing chosen yet); then row 2 (0.45, at right angles to row 1) beats
    # row 3 (0.40, also at right angles) and row 4 (0.10 - 0.5, opposite row 1).
    assert batch.tolist() == [1, 2]


def test_plain_margin_order_would_differ():
    margin_order = UNLABELED[np.argsort(-(1 - np.abs(PROBA[UNLABELED, 0] - PROBA[UNLABELED, 1])), kind="stable")]
    assert margin_order.tolist() == [1, 2, 3, 4] != diverse_margin(PROBA, FEATURES, UNLABELED, np.array([0]), 4).tolist()


def test_select_serves_it_as_auto_with_distinct_unlabeled_rows():
    candidates = Candidates(features=FEATURES, unlabeled=UNLABELED, labeled=np.array([0]), labels=np.array(["a"]),
                            proba=PROBA, model=None, spec={}, rng=np.random.default_rng(0))
    assert select("auto", candidates, 3).tolist() == [2, 1, 3]
    rng = np.random.default_rng(1)
    X, p = rng.normal(size=(300, 5)), rng.dirichlet(np.ones(3), size=300)
    batch = diverse_margin(p, X, np.arange(10, 300), np.arange(10), 30)
    assert len(set(batch.tolist())) == 30 and not set(batch.tolist()) & set(range(10))
