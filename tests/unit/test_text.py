"""The text featurizer and the tf-idf step a text pool's model learns from every row of the pool."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from sieve.core.errors import InvalidInput
from sieve.core.selection import ALL_STRATEGIES
from sieve.core.text import DEFAULT_FEATURIZER, featurize, normalize_featurizer
from sieve.core.training import RankRequest, fit, predict_proba, rank_pool
from sieve.limits import MAX_TEXT_FEATURES


def test_featurize_gives_l2_normalized_sparse_float32_rows_of_the_configured_width():
    rows = featurize(["good good good film", "bad film", ""], normalize_featurizer({"n_features": 64}))
    assert sparse.isspmatrix_csr(rows) and rows.dtype == np.float32 and rows.shape == (3, 64)
    rows = rows.toarray()
    assert np.linalg.norm(rows[:2], axis=1) == pytest.approx([1, 1], abs=1e-6)
    assert not rows[2].any()  # an empty text is a zero row, not an error


def test_featurize_is_sublinear_in_term_counts_and_the_same_in_every_call():
    spec = normalize_featurizer({"n_features": 1024})
    once, thrice = featurize(["good film", "good good good film"], spec).toarray()
    # 1 + ln 3 against 1 for "film": a repeated word weighs more, but far less than three times as much.
    ratio = thrice.max() / thrice[thrice > 0].min()
    assert ratio == pytest.approx(1 + np.log(3), rel=1e-5)
    assert np.array_equal(featurize(["good film"], spec).toarray()[0], once)


def test_normalize_featurizer_fills_defaults_and_names_the_bad_field():
    assert normalize_featurizer(None) == DEFAULT_FEATURIZER
    for bad, field in [
        ({"n_features": MAX_TEXT_FEATURES + 1}, "featurizer.n_features"),
        ({"n_features": True}, "featurizer.n_features"),
        ({"ngram_max": 4}, "featurizer.ngram_max"),
        ({"type": "bert"}, "featurizer.type"),
        ({"tfidf": "yes"}, "featurizer.tfidf"),
        ({"stop_words": "english"}, "featurizer.stop_words"),
        ([], "featurizer"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            normalize_featurizer(bad)
        assert caught.value.field == field


def test_a_tfidf_model_learns_document_frequencies_from_the_whole_pool_and_predicts_text():
    spec = normalize_featurizer({"n_features": 256})
    texts = ["great fun film"] * 5 + ["dull boring film"] * 5 + ["film"] * 40
    features = featurize(texts, spec)
    model = fit(
        features,
        np.array([0, 5]),
        ["pos", "neg"],
        {"type": "logistic_regression", "params": {}},
        random_state=0,
        featurizer=spec,
    )
    # "film" is in every row: its idf is the lowest, which only the unlabeled rows can tell.
    idf = model.named_steps["tfidf"].idf_
    film = featurize(["film"], spec).indices[0]
    assert idf[film] == idf.min()
    proba = predict_proba(model, featurize(["great fun", "boring dull"], spec))
    assert list(model.classes_) == ["neg", "pos"]
    assert proba[0, 1] > 0.5 > proba[1, 1]


def test_a_tfidf_pipeline_feeds_models_that_take_dense_rows_only():
    spec = normalize_featurizer({"n_features": 8})
    rng = np.random.default_rng(0)
    features = featurize(
        [" ".join(rng.choice(["ant", "bee", "cat", "dog", "eel", "fox"], size=6)) for _ in range(20)], spec
    )
    model = fit(
        features, np.arange(20), ["x", "y"] * 10, {"type": "gaussian_nb", "params": {}}, random_state=0, featurizer=spec
    )
    proba = predict_proba(model, features)
    assert proba.shape == (20, 2) and np.isfinite(proba).all()


def test_featurized_rows_hold_as_many_values_as_the_text_has_terms_whatever_the_width():
    spec = normalize_featurizer({"n_features": MAX_TEXT_FEATURES})
    rows = featurize(["one two three", "four five"] * 5000, spec)
    assert rows.shape == (10_000, MAX_TEXT_FEATURES) and rows.nnz == 25_000


def test_a_dense_only_model_fits_and_scores_sparse_rows_a_bounded_block_at_a_time():
    spec = normalize_featurizer({"n_features": MAX_TEXT_FEATURES, "tfidf": False})
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(50)]
    features = featurize([" ".join(rng.choice(words, size=5)) for _ in range(3000)], spec)
    model = fit(
        features,
        np.arange(1500),
        ["x", "y"] * 750,
        {"type": "gaussian_nb", "params": {}},
        random_state=0,
        featurizer=spec,
    )
    proba = predict_proba(model, features)
    assert proba.shape == (3000, 2) and np.allclose(proba.sum(axis=1), 1)


@pytest.mark.parametrize("model", ["logistic_regression", "gaussian_nb"])
def test_every_strategy_ranks_a_text_pool_from_its_sparse_rows(model):
    spec = normalize_featurizer({"n_features": MAX_TEXT_FEATURES})
    rng = np.random.default_rng(2)
    words = ["great", "fun", "dull", "boring", "film", "plot", "cast"]
    texts = [" ".join(rng.choice(words, size=4)) for _ in range(300)]
    features = featurize(texts, spec)
    for labeled, labels in [(np.array([0]), ["a"]), (np.array([0, 1, 2, 3]), ["a", "b", "a", "b"])]:
        result = rank_pool(
            RankRequest(
                features,
                labeled,
                labels,
                {"type": model, "params": {}},
                seed=0,
                version=1,
                strategies=ALL_STRATEGIES,
                horizon=16,
                featurizer=spec,
            )
        )
        for strategy, (order, _) in result.orders.items():
            assert sorted(order.tolist()) == list(range(len(labeled), 300)), strategy
