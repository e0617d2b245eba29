"""The strategy registry: one entry per strategy, what is derived from it, and random streams that follow
a strategy's name, so that adding a strategy leaves every other strategy's picks as they were."""

import hashlib

import numpy as np
import pytest

from sieve.core.candidates import Candidates
from sieve.core.registry import BATCH, RANKING, REGISTRY, Registry, Strategy, stream_key
from sieve.core.selection import ALL_STRATEGIES, BATCH_STRATEGIES, RANKING_STRATEGIES
from sieve.core.strategies import margin
from sieve.core.training import ALWAYS_RANKED, RankRequest, rank_pool
from sieve.labelstudio import protocol
from sieve.service.pool_schemas import CreatePoolSchema, QueryArgsSchema


def _grid_pool():
    """2,100 rows on a 50 x 42 grid, more than auto samples (2,048), so that auto's picks depend on its
    random stream too; three classes by region, two labeled rows each."""
    i = np.arange(2100)
    X = np.column_stack([i % 50, i // 50]).astype(np.float32) / 10.0
    labeled = np.array([0, 49, 1025, 1050, 2050, 2099])
    labels = ["left", "right", "left", "right", "top", "top"]
    return X, labeled, labels


def _orders(strategies, registry=REGISTRY):
    X, labeled, labels = _grid_pool()
    request = RankRequest(
        X,
        labeled,
        labels,
        {"type": "logistic_regression", "params": {}},
        seed=11,
        version=3,
        strategies=tuple(strategies),
        horizon=6,
        registry=registry,
    )
    return {name: order[:6].tolist() for name, (order, _) in rank_pool(request).orders.items()}


def test_the_picks_of_auto_badge_and_random_on_a_fixed_pool_are_pinned():
    # Pinned so that any change of the seeding shows: these are the picks existing pools get.
    orders = _orders(["auto", "badge"])
    assert orders["auto"] == AUTO_PICKS
    assert orders["badge"] == BADGE_PICKS
    assert orders["random"] == RANDOM_PICKS


AUTO_PICKS = [371, 1190, 1313, 385, 560, 1528]
BADGE_PICKS = [1299, 1483, 700, 1942, 1216, 940]
RANDOM_PICKS = [1328, 1355, 1455, 117, 1849, 376]


def _extra(c, rows):
    return c.rng.random(len(rows))


def test_registering_a_strategy_leaves_the_picks_of_the_others_unchanged():
    # The extra strategy comes first: with streams seeded by position, every other stream would move.
    extra = Strategy("extra_random", RANKING, score=_extra, needs_model=False)
    extended = Registry([extra, *REGISTRY])
    assert extended.names.index("extra_random") == 0
    before = _orders(ALL_STRATEGIES)
    after = _orders((*ALL_STRATEGIES, "extra_random"), registry=extended)
    assert set(after) == set(before) | {"extra_random"}
    for name in ALL_STRATEGIES:
        assert after[name] == before[name], name
    # A strategy that draws from its stream as random does, under another name, draws other rows.
    assert after["extra_random"] != after["random"]


def test_a_strategy_stream_is_a_hash_of_its_name_alone():
    for entry in REGISTRY:
        digest = hashlib.blake2b(entry.name.encode(), digest_size=8).digest()
        assert entry.stream == stream_key(entry.name) == int.from_bytes(digest, "big")
    assert len({entry.stream for entry in REGISTRY}) == len(ALL_STRATEGIES)


def test_names_groups_validation_and_schemas_come_from_the_registry():
    assert RANKING_STRATEGIES == tuple(e.name for e in REGISTRY if e.kind == RANKING)
    assert BATCH_STRATEGIES == tuple(e.name for e in REGISTRY if e.kind == BATCH)
    assert ALL_STRATEGIES == REGISTRY.names == RANKING_STRATEGIES + BATCH_STRATEGIES
    assert ALWAYS_RANKED == tuple(e.name for e in REGISTRY if e.always_ranked)
    for schema in (CreatePoolSchema(), QueryArgsSchema()):
        assert tuple(schema.fields["strategy"].validate.choices) == ALL_STRATEGIES
    with pytest.raises(ValueError, match="unknown strategy 'nope'; valid strategies: least_confidence, margin"):
        REGISTRY["nope"]
    assert "nope" not in REGISTRY and REGISTRY.get("nope") is None and REGISTRY.get(3) is None


def test_label_studio_scales_by_the_entry_bound_and_falls_back_to_the_order():
    for entry in REGISTRY:
        scores = np.array([0.0, 0.25, 0.1])
        confidence = protocol.confidence(entry.name, scores, 4)
        if entry.score_bound is None:
            assert confidence.tolist() == [1.0, 0.0, 0.5]
        else:
            np.testing.assert_allclose(confidence, 1.0 - scores / entry.score_bound(4))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": "Margin", "kind": RANKING, "proba_score": margin}, "lowercase"),
        ({"name": "x", "kind": "other", "proba_score": margin}, "kind"),
        ({"name": "x", "kind": RANKING}, "exactly one"),
        ({"name": "x", "kind": RANKING, "proba_score": margin, "score": _extra}, "exactly one"),
        ({"name": "x", "kind": BATCH}, "needs select"),
        ({"name": "x", "kind": BATCH, "select": lambda c, r, k: r[:k], "score_bound": lambda n: 1.0}, "no score"),
    ],
)
def test_a_malformed_entry_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Strategy(**fields)


def test_a_registry_refuses_two_entries_of_one_name():
    with pytest.raises(ValueError, match="share a name"):
        REGISTRY.adding(Strategy("margin", RANKING, proba_score=margin))


def test_an_entry_with_a_proba_score_scores_the_candidates_rows_by_it():
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    none = np.zeros(0, dtype=np.int64)
    c = Candidates(np.zeros((3, 1)), np.arange(3), none, none, proba, None, {}, np.random.default_rng(0))
    np.testing.assert_allclose(REGISTRY["margin"].score(c, np.array([2, 0])), margin(proba[[2, 0]]))


def test_ratio_of_confidence_is_a_ranking_strategy_ranked_when_a_pool_uses_it():
    entry = REGISTRY["ratio_of_confidence"]
    assert entry.kind == RANKING and entry.needs_model and not entry.always_ranked
    assert "ratio_of_confidence" in ALL_STRATEGIES and "ratio_of_confidence" not in ALWAYS_RANKED
    proba = np.array([[0.5, 0.3, 0.2], [0.8, 0.1, 0.1], [0.4, 0.4, 0.2]])
    # Label Studio: 1 - p_(2)/p_(1), computed per item.
    np.testing.assert_allclose(protocol.confidence(entry.name, entry.proba_score(proba), 3), [0.4, 0.875, 0.0])
