"""Text pools end to end: items carry text, the API featurizes it, workers fit a tf-idf model."""

from __future__ import annotations

POSITIVE = [
    "great film, loved it",
    "wonderful acting and a great story",
    "loved every minute, wonderful",
    "a great and joyful film",
    "wonderful, great fun",
]
NEGATIVE = [
    "boring film, hated it",
    "dull story and awful acting",
    "hated every minute, boring",
    "an awful and dull film",
    "boring, awful waste",
]


def _items(texts, prefix="t"):
    return [{"id": f"{prefix}{i}", "text": t} for i, t in enumerate(texts)]


def test_a_text_pool_learns_from_labels_and_predicts_texts(api):
    texts = POSITIVE + NEGATIVE
    answer = api.post(
        "/v1/pools",
        json={
            "items": _items(texts),
            "featurizer": {"n_features": 512},
            "labels": [{"id": "t0", "label": "pos"}, {"id": "t5", "label": "neg"}],
        },
    )
    assert answer.status_code == 201, answer.text
    status = answer.json()
    assert status["dimension"] == 512
    assert status["featurizer"] == {"type": "hashing", "n_features": 512, "ngram_max": 1, "tfidf": True}
    pool = status["pool_id"]
    query = api.query(pool, k=8, wait=20)
    assert query["cold_start"] is False and len(query["items"]) == 8
    predicted = api.post(f"/v1/pools/{pool}/predict", json={"texts": ["a wonderful great film", "awful, dull"]})
    assert predicted.status_code == 200, predicted.text
    assert [p["predicted_label"] for p in predicted.json()["predictions"]] == ["pos", "neg"]
    by_ids = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["t1", "t6"]}).json()
    assert [p["predicted_label"] for p in by_ids["predictions"]] == ["pos", "neg"]


def test_text_items_get_the_default_featurizer_and_join_with_more_text(api):
    pool = api.create_pool(items=_items(POSITIVE))
    assert api.status(pool)["featurizer"]["n_features"] == 1024
    added = api.post(f"/v1/pools/{pool}/items", json={"items": _items(NEGATIVE, prefix="n")})
    assert added.status_code == 202 and added.json()["n_items"] == 10


def test_a_pool_takes_text_or_features_never_both(api):
    text_pool = api.create_pool(items=_items(POSITIVE))
    vector_pool = api.create_pool(items=[{"id": "v", "features": [1.0, 2.0]}])
    cases = [
        ("post", "/v1/pools", {"items": [{"id": "a", "text": "x"}, {"id": "b", "features": [1.0]}]}, "items[1].text"),
        ("post", "/v1/pools", {"items": [{"id": "a", "text": "x", "features": [1.0]}]}, "items[0].text"),
        ("post", "/v1/pools", {"items": [{"id": "a", "features": [1.0]}], "featurizer": {}}, "items[0].features"),
        ("post", "/v1/pools", {"featurizer": {"n_features": 1}}, "featurizer.n_features"),
        ("post", "/v1/pools", {"items": [{"id": "a", "text": 3}]}, "items[0].text"),
        ("post", f"/v1/pools/{text_pool}/items", {"items": [{"id": "b", "features": [1.0]}]}, "items[0].features"),
        ("post", f"/v1/pools/{vector_pool}/items", {"items": [{"id": "b", "text": "x"}]}, "items[0].text"),
        ("post", f"/v1/pools/{vector_pool}/predict", {"texts": ["x"]}, "texts"),
        ("post", f"/v1/pools/{text_pool}/predict", {"texts": ["x"], "ids": ["t0"]}, "features"),
    ]
    for method, path, body, field in cases:
        answer = api.request(method.upper(), path, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["field"] == field, (body, answer.json())


def test_a_text_pool_may_not_standardize_its_rows(api):
    # Standardizing centres every column, which would make the sparse rows of a text pool dense in the worker.
    refused = api.post(
        "/v1/pools",
        json={
            "items": [{"id": "a", "text": "great film"}],
            "model": {"type": "logistic_regression", "standardize": True},
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["field"] == "model.standardize"
