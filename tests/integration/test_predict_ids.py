"""/predict names the item of each prediction when it was asked by ids."""

from __future__ import annotations

import numpy as np

from tests.helpers import items_of


def test_predictions_by_ids_echo_each_id_in_the_order_asked_and_feature_rows_carry_null(api):
    X = np.vstack([np.full((5, 2), -3.0), np.full((5, 2), 3.0)])
    pool = api.create_pool(items=items_of(X), labels=[{"id": "i0", "label": "neg"}, {"id": "i9", "label": "pos"}])
    assert api.wait_idle(pool)["retrain"]["last_error"] is None
    by_ids = api.post(f"/v1/pools/{pool}/predict", json={"ids": ["i8", "i1", "i8"]})
    assert by_ids.status_code == 200, by_ids.text
    assert [(p["id"], p["predicted_label"]) for p in by_ids.json()["predictions"]] == [
        ("i8", "pos"),
        ("i1", "neg"),
        ("i8", "pos"),
    ]
    by_rows = api.post(f"/v1/pools/{pool}/predict", json={"features": [[3.0, 3.0]]})
    assert by_rows.status_code == 200, by_rows.text
    assert [p["id"] for p in by_rows.json()["predictions"]] == [None]
