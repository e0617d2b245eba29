"""The running credit that decides how many of a query's slots are audit items."""

from __future__ import annotations

import pytest

from sieve.core.audit import audit_slots


def test_the_credit_hands_out_floor_of_served_times_rate_in_all():
    served, given = 0, []
    for k in [3, 7, 10, 1, 19, 20]:
        given.append(audit_slots(served, k, 0.05))
        served += k
    # 60 slots at 5 %: 3 audit items in all, the first when the 20th slot is served.
    assert given == [0, 0, 1, 0, 1, 1]
    assert sum(given) == 3


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.1, 0.5])
def test_after_any_sequence_of_queries_the_audit_count_is_within_one_of_the_rate(rate):
    served, total = 0, 0
    for k in [1, 2, 5, 10, 13, 64, 3] * 5:
        total += audit_slots(served, k, rate)
        served += k
        assert served * rate - 1 < total <= served * rate


def test_no_rate_or_no_slot_gives_no_audit_item_and_bad_counts_are_refused():
    assert audit_slots(100, 10, 0.0) == 0
    assert audit_slots(100, 0, 0.5) == 0
    with pytest.raises(ValueError):
        audit_slots(-1, 2, 0.1)
