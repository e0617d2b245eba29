"""/v1/pools: create, list, inspect, change, delete pools; add items, query, teach, predict."""

from __future__ import annotations

import hashlib

from flask import Response, g, jsonify, request, url_for
from flask.views import MethodView

from sieve.core.errors import Pending
from sieve.service import tabular_bodies
from sieve.service.answers import predict_answer, query_answer
from sieve.service.parsing import SieveBlueprint
from sieve.service.pool_schemas import (
    AddItemsSchema,
    CreatePoolSchema,
    CurveArgsSchema,
    HistorySchema,
    IdempotencyHeaderSchema,
    ItemsAddedSchema,
    LookupAnswerSchema,
    LookupSchema,
    PoolListArgsSchema,
    PoolListSchema,
    PoolStatusSchema,
    PredictAnswerSchema,
    PredictSchema,
    QueryAnswerSchema,
    QueryArgsSchema,
    QueryPendingSchema,
    ReleaseAnswerSchema,
    ReleaseSchema,
    TeachAnswerSchema,
    TeachSchema,
    UnlabelAnswerSchema,
    UnlabelSchema,
    UpdatePoolSchema,
)
from sieve.service.responses import BODY_ERRORS, problems
from sieve.service.state import state
from sieve.storage.pool_store import Idempotency
from sieve.use_cases import Labels, Pools, PoolSpec

CURVE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

# Argument schemas are passed as instances: given a class, webargs would build a new schema per request.
blp = SieveBlueprint("pools", __name__, url_prefix="/v1/pools", description="Pools of items to label.")


def pools() -> Pools:
    return state().pools


def _idempotency(headers) -> Idempotency | None:
    if "key" not in headers:
        return None
    # A binary body was hashed as it was read (service.tabular_bodies); a JSON one is in memory.
    body_hash = g.get("body_hash") or hashlib.sha256(request.get_data()).hexdigest()
    return Idempotency(key=headers["key"], body_hash=body_hash)


def _labels(body) -> tuple[list[str], list, list[str]]:
    """Ids, labels and splits (train or eval) of a body's `labels`."""
    entries = body.get("labels", [])
    return [e["id"] for e in entries], [e["label"] for e in entries], [e["split"] for e in entries]


@blp.route("")
class PoolCollection(MethodView):
    @blp.arguments(PoolListArgsSchema(), location="query")
    @blp.response(200, PoolListSchema)
    @problems(blp, 422)
    def get(self, args):
        """List the caller's pools with their status, a page at a time (by default up to 1000, in id order)."""
        return pools().list(g.tenant, args.get("after", ""), args["limit"])

    @blp.arguments(CreatePoolSchema(), required=False)  # every field is optional: no body, an empty pool
    @blp.doc(requestBody=tabular_bodies.request_body_doc(create=True))
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @problems(blp, 409, *BODY_ERRORS)
    @blp.response(201, PoolStatusSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, body, headers):
        """Create a pool, optionally with items, initial labels, classes, model and strategy.

        Every pool gets a new id. Under an Idempotency-Key, a replay with the same body returns the pool the
        first call made while it exists (once deleted, a replay makes a new pool). A tenant holding
        SIEVE_MAX_POOLS_PER_TENANT pools gets a 409 (field `pools`)."""
        ids, labels, splits = _labels(body)
        spec = PoolSpec(
            name=body.get("name"),
            classes=body.get("classes"),
            model=body.get("model"),
            strategy=body.get("strategy"),
            random_state=body.get("random_state"),
            featurizer=body.get("featurizer"),
            stopping=body.get("stopping"),
        )
        with tabular_bodies.labels_named_by_row():
            pool_id = pools().create(
                spec, body.get("items"), Labels(ids, labels, splits), idem=_idempotency(headers), tenant=g.tenant
            )
        return pools().status(pool_id), 201, {"Location": url_for("pools.Pool", pool_id=pool_id)}


@blp.route("/<string:pool_id>")
class Pool(MethodView):
    @blp.response(200, PoolStatusSchema)
    @problems(blp, 404)
    def get(self, pool_id):
        """The pool's counts, versions and retraining state."""
        return pools().status(pool_id)

    @blp.arguments(UpdatePoolSchema())
    @problems(blp, 404, *BODY_ERRORS)
    @blp.response(200, PoolStatusSchema)
    def patch(self, body, pool_id):
        """Replace the pool's stopping policy.

        The answer and every later status and query follow the new policy at once: `stop` is recomputed from
        the history under it (the history's entries keep what the rules said at their version)."""
        return pools().set_stopping(pool_id, body["stopping"])

    @blp.response(204)
    @problems(blp, 404)
    def delete(self, pool_id):
        """Delete the pool and every key it had."""
        pools().delete(pool_id)


@blp.route("/<string:pool_id>/items", methods=["POST"])
@blp.arguments(AddItemsSchema())
@blp.doc(requestBody=tabular_bodies.request_body_doc(create=False))
@blp.arguments(IdempotencyHeaderSchema(), location="headers")
@blp.response(202, ItemsAddedSchema)
@problems(blp, 404, 409, *BODY_ERRORS)
def add_items(body, headers, pool_id):
    """Add items to the pool, and labels of some of them, all or nothing."""
    batch = body["items"]
    with tabular_bodies.labels_named_by_row():
        change = pools().add_items(pool_id, batch, idem=_idempotency(headers), labels=Labels(*_labels(body)))
    return {"added": len(batch.ids), "n_items": change.n_items, "version": change.version, "job_id": change.job_id}


@blp.route("/<string:pool_id>/items/lookup", methods=["POST"])
@blp.arguments(LookupSchema())
@blp.response(200, LookupAnswerSchema)
@problems(blp, 404, *BODY_ERRORS)
def lookup_items(body, pool_id):
    """Which of these ids the pool holds: what a client resuming an upload leaves out of its next call."""
    return {"present": pools().present_ids(pool_id, body["ids"])}


@blp.route("/<string:pool_id>/query", methods=["GET"])
@blp.arguments(QueryArgsSchema(), location="query")
@blp.response(200, QueryAnswerSchema)
@blp.alt_response(
    202,
    schema=QueryPendingSchema,
    description="The ranking is being computed (a new pool, "
    "or a strategy the pool has not used before): nothing is leased; ask again shortly.",
)
@problems(blp, 404, 409, 422)
def query(args, pool_id):
    """The k unlabeled items the current model is least sure about, most informative first (409 once a
    pool that enforces its label budget has spent it)."""
    annotator = args.get("annotator", "")
    try:
        ranking = pools().query(
            pool_id, args["k"], args.get("strategy"), args["wait"], args.get("lease_seconds"), annotator, g.tenant
        )
    except Pending as pending:
        response = jsonify(
            {
                "pool_id": pool_id,
                "strategy": pending.strategy,
                "status": "pending",
                "detail": pending.message,
                "job_id": pending.job_id,
            }
        )
        response.status_code = 202
        response.headers["Retry-After"] = "1"
        if pending.job_id:
            response.headers["Location"] = url_for("ops.job", job_id=pending.job_id)
        return response
    # The hot path: the answer is built with JSON types already, so it skips the schema's dump (a third
    # of the request's time); a test checks that dumping it through QueryAnswerSchema changes nothing.
    return jsonify(query_answer(pool_id, ranking, annotator))


@blp.route("/<string:pool_id>/release", methods=["POST"])
@blp.arguments(ReleaseSchema())
@blp.response(200, ReleaseAnswerSchema)
@problems(blp, 404, *BODY_ERRORS)
def release(body, pool_id):
    """Give leased items back early, so that the next query may hand them out again."""
    return {"released": pools().release(pool_id, body["ids"], body.get("annotator", ""))}


@blp.route("/<string:pool_id>/teach", methods=["POST"])
@blp.arguments(TeachSchema())
@blp.arguments(IdempotencyHeaderSchema(), location="headers")
@blp.response(202, TeachAnswerSchema)
@problems(blp, 404, 409, *BODY_ERRORS)
def teach(body, headers, pool_id):
    """Record labels, all or nothing; a retrain follows in the background."""
    ids, labels, splits = _labels(body)
    change = pools().teach(pool_id, ids, labels, idem=_idempotency(headers), splits=splits)
    return {"accepted": len(ids), "labels_version": change.labels_version, "job_id": change.job_id}


@blp.route("/<string:pool_id>/unlabel", methods=["POST"])
@blp.arguments(UnlabelSchema())
@blp.response(202, UnlabelAnswerSchema)
@problems(blp, 404, *BODY_ERRORS)
def unlabel(body, pool_id):
    """Remove the labels of these items, all or nothing; they are unlabeled again after the next retrain."""
    removed, change = pools().unlabel(pool_id, body["ids"])
    return {"removed": removed, "labels_version": change.labels_version, "job_id": change.job_id}


@blp.route("/<string:pool_id>/history", methods=["GET"])
@blp.response(200, HistorySchema)
@problems(blp, 404)
def history(pool_id):
    """Per model version: labels, metrics, agreement with the previous model, times, and whether to stop."""
    return pools().history(pool_id)


def _curve(pool_id: str, args, image_format: str):
    from sieve.curves import render  # matplotlib loads on the first plot, not with every API process

    data = pools().history(pool_id)
    target = data["stopping"]["target"]
    metric = args.get("metric") or (target["metric"] if target else "accuracy")
    body = render(
        data["versions"],
        metric,
        target["value"] if target and target["metric"] == metric else None,
        image_format,
        title=data["name"] or f"pool {pool_id}",
    )
    return Response(body, mimetype=CURVE_TYPES[image_format])


_CURVE_DOC = (
    "The metric against the number of labels, one point per model version; the target and the stop point marked."
)


@blp.route("/<string:pool_id>/learning_curve.png", methods=["GET"])
@blp.arguments(CurveArgsSchema(), location="query")
@blp.doc(responses={"200": {"description": _CURVE_DOC, "content": {CURVE_TYPES["png"]: {}}}})
@problems(blp, 404, 422)
def learning_curve_png(args, pool_id):
    """The learning curve as a PNG image."""
    return _curve(pool_id, args, "png")


@blp.route("/<string:pool_id>/learning_curve.svg", methods=["GET"])
@blp.arguments(CurveArgsSchema(), location="query")
@blp.doc(responses={"200": {"description": _CURVE_DOC, "content": {CURVE_TYPES["svg"]: {}}}})
@problems(blp, 404, 422)
def learning_curve_svg(args, pool_id):
    """The learning curve as an SVG image."""
    return _curve(pool_id, args, "svg")


@blp.route("/<string:pool_id>/predict", methods=["POST"])
@blp.arguments(PredictSchema())
@blp.response(200, PredictAnswerSchema)
@problems(blp, 404, 409, *BODY_ERRORS)
def predict(body, pool_id):
    """Predicted labels and probabilities of the current model, for raw features, texts or pool items."""
    ids = body.get("ids")
    prediction = pools().predict(pool_id, features=body.get("features"), ids=ids, texts=body.get("texts"))
    return predict_answer(pool_id, prediction, ids)
