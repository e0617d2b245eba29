"""The JSON answers of /query and /predict, built from what the use cases return."""

from __future__ import annotations

from sieve.storage.rankings import Ranking
from sieve.use_cases import Prediction


def query_answer(pool_id: str, ranking: Ranking, annotator: str = "") -> dict:
    classes = ranking.model_classes
    names = [str(c) for c in classes]
    scores = ranking.scores.tolist()
    if ranking.probabilities is None:
        items = [
            {"id": i, "score": s, "predicted_label": None, "probabilities": None, "audit": a}
            for i, s, a in zip(ranking.ids, scores, ranking.audit)
        ]
    else:
        best = ranking.probabilities.argmax(axis=1).tolist()
        items = [
            {"id": i, "score": s, "predicted_label": classes[b], "probabilities": dict(zip(names, p)), "audit": a}
            for i, s, b, p, a in zip(ranking.ids, scores, best, ranking.probabilities.tolist(), ranking.audit)
        ]
    return {
        "pool_id": pool_id,
        "strategy": ranking.strategy,
        "model_version": ranking.model_version,
        "labels_version": ranking.labels_version,
        "ranked_labels_version": ranking.ranked_labels_version,
        "cold_start": ranking.cold_start,
        "stop": ranking.stop,
        "lease": None
        if ranking.lease_expires_ms is None
        else {"expires_at": ranking.lease_expires_ms / 1000, "annotator": annotator or None},
        "items": items,
    }


def predict_answer(pool_id: str, prediction: Prediction, ids: list[str] | None = None) -> dict:
    classes = prediction.classes
    best = prediction.proba.argmax(axis=1)
    asked = ids if ids is not None else [None] * len(best)
    return {
        "pool_id": pool_id,
        "model_version": prediction.model_version,
        "predictions": [
            {
                "id": i,
                "predicted_label": classes[b],
                "probabilities": {str(c): float(p) for c, p in zip(classes, row)},
            }
            for i, b, row in zip(asked, best, prediction.proba)
        ],
    }
