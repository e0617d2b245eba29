"""Audit items: how many of a query's k slots go to uniformly random unlabeled items.

A pool with an audit rate r mixes random items into what its queries hand out, so that the evaluation
split fills with a uniform sample of the pool while annotators label what the strategy chose. The
count is a running credit, not a coin flip: after s items served in all, floor(s * r) of them were
audit items, so a query for k items holds floor((s + k) * r) - floor(s * r) of them. That is
deterministic (a simulation replays it exactly) and never drifts from the rate by a whole item. Which
items they are is drawn from the pool's seeded random ranking (core/training.py), never from a model;
the query script (storage/lua/query.lua) computes the same count in Lua with the same double arithmetic.
"""

from __future__ import annotations

import math


def audit_slots(served: int, k: int, rate: float) -> int:
    """How many of the next k items are audit items, after `served` items were handed out in all."""
    if served < 0 or k < 0:
        raise ValueError("served and k must be non-negative")
    if rate <= 0 or k == 0:
        return 0
    return min(k, math.floor((served + k) * rate) - math.floor(served * rate))
