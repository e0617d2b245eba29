"""Request and response schemas of the v1 API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from sieve import limits
from sieve.core.estimators import MODEL_TYPES
from sieve.core.evaluation import METRICS, TARGET_METRICS
from sieve.core.selection import ALL_STRATEGIES
from sieve.core.stopping import MAX_AUDIT_RATE
from sieve.core.text import DEFAULT_FEATURIZER, FEATURIZER_TYPES, MAX_NGRAM
from sieve.service.fields import ItemIdsField, ItemsField, LabelField, MatrixField, StrictBoolean, TextsField, storable

_label_doc = {"oneOf": [{"type": "string"}, {"type": "integer"}]}

# No scikit-learn parameter nests deeper than a list of dicts; deeper JSON would only exhaust the stack of
# the recursive checks that follow.
_MAX_PARAM_DEPTH = 4


def _too_deep(value) -> bool:
    """Whether lists and objects nest more than _MAX_PARAM_DEPTH levels in `value`, found without recursion."""
    level = [value]
    for _ in range(_MAX_PARAM_DEPTH):
        level = [
            child for v in level if isinstance(v, (list, dict)) for child in (v.values() if isinstance(v, dict) else v)
        ]
    return any(isinstance(v, (list, dict)) for v in level)


ID_RULES = [validate.Length(1, limits.MAX_ID_LENGTH), storable]
"""What every item id and annotator name must be: the same rules wherever a client sends one."""


def item_ids(most: int, **options) -> fields.List:
    """A list of 1 to `most` item ids."""
    return fields.List(fields.String(validate=ID_RULES), validate=validate.Length(1, most), **options)


class ModelSpecSchema(ma.Schema):
    # Checked when the pool is built (core.estimators), so documented here only: unknown types are a 422.
    type = fields.String(
        metadata={
            "description": "logistic_regression (default), sgd_classifier, random_forest or gaussian_nb.",
            "enum": list(MODEL_TYPES),
        }
    )
    params = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "scikit-learn parameters of that model, each within a range that bounds fit time and model "
            "size (docs/api.md, Model parameters; a value outside is a 422 naming it and its range); unset "
            "ones keep scikit-learn's defaults, except sgd_classifier's loss (log_loss) and "
            "random_forest's max_leaf_nodes (1000)."
        },
    )
    # Raw, so that the core's check refuses 1 or "true" instead of marshmallow coercing them.
    standardize = fields.Raw(
        metadata={
            "type": "boolean",
            "default": False,
            "description": (
                "Scale each feature to zero mean and unit variance, learned from the labeled items at each fit, "
                "before the model sees it (a scikit-learn Pipeline of StandardScaler and the model)."
            ),
        }
    )

    @ma.validates_schema
    def _shallow(self, data, **kwargs):
        for name, value in data.get("params", {}).items():
            if _too_deep(value):
                raise ma.ValidationError(
                    {"params": {name: [f"nests lists or objects more than {_MAX_PARAM_DEPTH} levels deep"]}}
                )


SPLITS = ("train", "eval")


class LabelSchema(ma.Schema):
    id = fields.String(required=True, validate=ID_RULES)
    label = LabelField(required=True, metadata=_label_doc)
    split = fields.String(
        load_default=None,
        validate=validate.OneOf(SPLITS),
        metadata={
            "description": "`eval` sets the item apart as an evaluation item: never queried, never trained on, "
            "used to measure every model version. An item stays in the split it was first "
            "labeled in (409 otherwise). Left out: `train`, except for an item a query served as an audit "
            "item (`audit: true`), whose label goes to `eval`."
        },
    )


class TargetSchema(ma.Schema):
    metric = fields.String(required=True, validate=validate.OneOf(TARGET_METRICS))
    value = fields.Float(required=True, allow_nan=False, validate=validate.Range(0, 1))


class PlateauSchema(ma.Schema):
    kappa = fields.Float(
        load_default=0.99,
        allow_nan=False,
        validate=validate.Range(0, 1, min_inclusive=False),
        metadata={
            "description": "Cohen's kappa between consecutive models' predictions on the stop set must exceed this."
        },
    )
    window = fields.Integer(
        strict=True,
        load_default=3,
        validate=validate.Range(1, limits.MAX_PLATEAU_WINDOW),
        metadata={"description": "... for this many model versions in a row."},
    )
    gain = fields.Float(
        load_default=0.01,
        allow_nan=False,
        validate=validate.Range(0, 1, min_inclusive=False),
        metadata={
            "description": "With an unbiased accuracy estimate (evaluation or audit items), the plateau is "
            "reached once the gain in accuracy over the last `labels` labels is below this with 95 % "
            "confidence (the upper end of its 90 % interval); kappa and window then do not apply."
        },
    )
    labels = fields.Integer(
        strict=True,
        load_default=100,
        validate=validate.Range(1, limits.MAX_POOL_ITEMS),
        metadata={"description": "... over this many training labels."},
    )


class AuditSchema(ma.Schema):
    rate = fields.Float(
        required=True,
        allow_nan=False,
        validate=validate.Range(0, MAX_AUDIT_RATE),
        metadata={
            "description": "Share of the items queries hand out that are drawn uniformly at random from the "
            "unlabeled items (marked `audit: true`); their labels go to the evaluation split and give an "
            "unbiased accuracy estimate. Each costs a label the strategy did not choose: 0.05 to 0.10 "
            "is the usual trade."
        },
    )


class StoppingSchema(ma.Schema):
    class Meta:
        description = (
            "When to stop labeling. Any rule that is met recommends stopping (`stop` in the pool's "
            "status and in every query answer); only `enforce_budget` refuses anything."
        )

    budget = fields.Integer(
        strict=True,
        validate=validate.Range(1, limits.MAX_POOL_ITEMS),
        allow_none=True,
        metadata={"description": "Stop once this many items are labeled (evaluation items do not count)."},
    )
    enforce_budget = StrictBoolean(
        load_default=False, metadata={"description": "Once the budget is spent, queries answer 409 instead of items."}
    )
    target = fields.Nested(
        TargetSchema,
        allow_none=True,
        metadata={
            "description": "Stop once the metric reaches the value: for accuracy, the lower end of the 90 % "
            "interval of the latest model's estimate, from at least 10 evaluation items (else by cross-validation, "
            "biased); for macro-F1, its value."
        },
    )
    plateau = fields.Nested(
        PlateauSchema,
        allow_none=True,
        load_default=lambda: PlateauSchema().load({}),
        metadata={
            "description": "Stabilizing predictions (Bloodgood and Vijay-Shanker, "
            "2009); on by default, null turns it off."
        },
    )
    audit = fields.Nested(
        AuditSchema,
        allow_none=True,
        metadata={"description": "Audit items mixed into queries; off (null) by default."},
    )

    @ma.validates_schema
    def _check(self, data, **kwargs):
        if data.get("enforce_budget") and data.get("budget") is None:
            raise ma.ValidationError({"enforce_budget": ["needs a budget"]})


def _check_labels(labels: list[dict]) -> None:
    """One label per id, and one kind of label (all strings or all integers), naming the entry at fault."""
    seen = set()
    for i, entry in enumerate(labels):
        if entry["id"] in seen:
            raise ma.ValidationError({"labels": {i: {"id": [f"duplicate id {entry['id']!r} in this request"]}}})
        seen.add(entry["id"])
        if type(entry["label"]) is not type(labels[0]["label"]):
            raise ma.ValidationError(
                {"labels": {i: {"label": ["labels must be all strings or all integers, not a mix"]}}}
            )


class IdempotencyHeaderSchema(ma.Schema):
    key = fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(1, 255), storable],
        metadata={
            "description": "Makes the call safe to retry: a replay with the same key and body within 24 hours "
            "returns the first answer and changes nothing; the same key with another body is a 422."
        },
    )


class FeaturizerSchema(ma.Schema):
    class Meta:
        description = (
            "How a text pool turns text into feature rows: hashed, sublinear, l2-normalized term "
            "frequencies, weighted by inverse document frequency in the model when `tfidf`."
        )

    type = fields.String(validate=validate.OneOf(FEATURIZER_TYPES), metadata={"default": "hashing"})
    n_features = fields.Integer(
        strict=True,
        validate=validate.Range(2, limits.MAX_TEXT_FEATURES),
        metadata={"default": DEFAULT_FEATURIZER["n_features"]},
    )
    ngram_max = fields.Integer(
        strict=True,
        validate=validate.Range(1, MAX_NGRAM),
        metadata={"default": 1, "description": "Longest word n-gram counted."},
    )
    tfidf = fields.Boolean(truthy={True}, falsy={False}, metadata={"default": True})


class CreatePoolSchema(ma.Schema):
    name = fields.String(validate=[validate.Length(max=limits.MAX_NAME_LENGTH), storable])
    # ItemsField refuses an empty list; minItems says so in openapi.yaml.
    items = ItemsField(
        metadata={
            "description": f"At most {limits.MAX_ITEMS_PER_CALL} per call; leave `items` out to create an empty pool.",
            "minItems": 1,
        }
    )
    labels = fields.List(
        fields.Nested(LabelSchema),
        validate=validate.Length(max=limits.MAX_LABELS_PER_CALL),
        metadata={"description": "Initial labels of items among `items`."},
    )
    classes = fields.List(
        LabelField(metadata=_label_doc),
        validate=validate.Length(1, limits.MAX_CLASSES),
        metadata={"description": "A closed list of allowed labels."},
    )
    model = fields.Nested(ModelSpecSchema)
    featurizer = fields.Nested(
        FeaturizerSchema, metadata={"description": "Makes a text pool; items that carry `text` get the default one."}
    )
    strategy = fields.String(validate=validate.OneOf(ALL_STRATEGIES))
    # strict: a non-strict Integer would take 1.5 for 1.
    random_state = fields.Integer(strict=True, validate=validate.Range(0, 2**32 - 1), allow_none=True)
    stopping = fields.Nested(StoppingSchema)

    @ma.validates_schema
    def _check(self, data, **kwargs):
        _check_labels(data.get("labels", []))
        classes = data.get("classes")
        if classes is not None and len({(type(c), c) for c in classes}) != len(classes):
            raise ma.ValidationError({"classes": ["must not repeat a class"]})


class UpdatePoolSchema(ma.Schema):
    stopping = fields.Nested(
        StoppingSchema,
        required=True,
        metadata={
            "description": "Replaces the pool's policy as a whole: fields left out take their defaults, as at "
            "creation (`{}` is the default policy), so send every rule you want to keep."
        },
    )


class AddItemsSchema(ma.Schema):
    items = ItemsField(required=True, metadata={"minItems": 1})
    labels = fields.List(
        fields.Nested(LabelSchema),
        validate=validate.Length(max=limits.MAX_LABELS_PER_CALL),
        metadata={"description": "Labels of items among `items`, taught in the same step: all or nothing."},
    )

    @ma.validates_schema
    def _check(self, data, **kwargs):
        _check_labels(data.get("labels", []))


class TeachSchema(ma.Schema):
    labels = fields.List(
        fields.Nested(LabelSchema), required=True, validate=validate.Length(1, limits.MAX_LABELS_PER_CALL)
    )

    @ma.validates_schema
    def _check(self, data, **kwargs):
        _check_labels(data.get("labels", []))


class QueryArgsSchema(ma.Schema):
    k = fields.Integer(load_default=10, validate=validate.Range(1, limits.MAX_K))
    strategy = fields.String(
        validate=validate.OneOf(ALL_STRATEGIES), metadata={"description": "Defaults to the pool's strategy."}
    )
    wait = fields.Float(
        load_default=0.0,
        validate=validate.Range(0, limits.MAX_QUERY_WAIT_SECONDS),
        allow_nan=False,
        metadata={
            "description": "Seconds to wait for a ranking that reflects every label taught so far. A tenant with "
            "`SIEVE_MAX_WAITING_QUERIES` queries already waiting on the same API process gets the "
            "answer at once instead (compare `labels_version` with `ranked_labels_version`)."
        },
    )
    lease_seconds = fields.Float(
        validate=validate.Range(0, limits.MAX_LEASE_SECONDS),
        allow_nan=False,
        metadata={
            "description": "How long the returned items stay reserved for this caller (default: the server's "
            "SIEVE_LEASE_SECONDS; 0: no lease). Teaching an item ends its lease."
        },
    )
    annotator = fields.String(
        validate=ID_RULES,
        metadata={"description": "Who the lease is for: a named annotator gets its own leased items again."},
    )


class ReleaseSchema(ma.Schema):
    ids = item_ids(limits.MAX_LABELS_PER_CALL, required=True)
    annotator = fields.String(
        validate=ID_RULES,
        metadata={"description": "Release only this annotator's leases; without it, any lease on these items ends."},
    )


class UnlabelSchema(ma.Schema):
    ids = item_ids(limits.MAX_LABELS_PER_CALL, required=True)


class UnlabelAnswerSchema(ma.Schema):
    removed = fields.Integer(metadata={"description": "Items that had a label and no longer have one."})
    labels_version = fields.Integer()
    job_id = fields.String(
        allow_none=True,
        metadata={"description": "The refresh job queued for this change; null when nothing changed or one is queued."},
    )


class LookupSchema(ma.Schema):
    ids = ItemIdsField(limits.MAX_ITEMS_PER_CALL, required=True)


class LookupAnswerSchema(ma.Schema):
    present = fields.List(
        fields.String(), metadata={"description": "The ids asked for that the pool holds, in the order asked."}
    )


class ReleaseAnswerSchema(ma.Schema):
    released = fields.Integer(metadata={"description": "Leases that ended."})


class PredictSchema(ma.Schema):
    class Meta:
        description = (
            "Exactly one of `features` (rows of the pool's dimension), `texts` (for a text pool) "
            "or `ids` (items of the pool)."
        )

    features = MatrixField()
    texts = TextsField()
    ids = item_ids(limits.MAX_PREDICT_ROWS)

    @ma.validates_schema
    def _one_of(self, data, **kwargs):
        if sum(name in data for name in ("features", "texts", "ids")) != 1:
            raise ma.ValidationError("give exactly one of features, texts or ids", "features")


# -- responses ------------------------------------------------------------------------------------


class RetrainStatusSchema(ma.Schema):
    queued = fields.Boolean()
    running = fields.Boolean()
    queued_job_id = fields.String(allow_none=True)
    running_job_id = fields.String(allow_none=True)
    last_finished_at = fields.Float(allow_none=True, metadata={"description": "Unix time."})
    last_duration_s = fields.Float(allow_none=True)
    last_error = fields.String(allow_none=True)


class StopSchema(ma.Schema):
    recommended = fields.Boolean()
    reasons = fields.List(
        fields.String(),
        metadata={"description": "Each rule that is met: `budget: ...`, `target: ...`, `plateau: ...`."},
    )


_stop_doc = {
    "description": "Whether to stop labeling: the budget against the live label count, target and "
    "plateau as of the latest model."
}


class PoolStatusSchema(ma.Schema):
    pool_id = fields.String()
    name = fields.String(allow_none=True)
    created_at = fields.Float(metadata={"description": "Unix time."})
    model = fields.Nested(ModelSpecSchema)
    strategy = fields.String()
    random_state = fields.Integer(allow_none=True)
    classes = fields.List(LabelField(metadata=_label_doc), allow_none=True)
    dimension = fields.Integer(allow_none=True)
    featurizer = fields.Nested(
        FeaturizerSchema,
        allow_none=True,
        metadata={"description": "A text pool's featurizer; null for a pool of feature vectors."},
    )
    n_items = fields.Integer()
    n_labeled = fields.Integer(metadata={"description": "Items labeled for training."})
    n_eval = fields.Integer(metadata={"description": "Evaluation items (labeled with `split: eval`)."})
    n_unlabeled = fields.Integer()
    classes_seen = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "Labeled items per class."}
    )
    labels_version = fields.Integer(metadata={"description": "Bumped by every teach call."})
    version = fields.Integer(
        metadata={
            "description": "Bumped by every change: teach, unlabel, added items, a "
            "strategy queried for the first time, a new stopping policy."
        }
    )
    model_version = fields.Integer(
        allow_none=True,
        metadata={"description": "The labels_version the current model was trained at; null before the first model."},
    )
    ranked_version = fields.Integer(
        allow_none=True, metadata={"description": "The version the current rankings were computed at."}
    )
    cold_start = fields.Boolean()
    stopping = fields.Nested(StoppingSchema)
    stop = fields.Nested(StopSchema, metadata=_stop_doc)
    estimate = fields.Nested(
        "EstimateSchema",
        allow_none=True,
        metadata={
            "description": "The latest model's accuracy with its 90 % interval (its history entry's `estimate`); "
            "null before the first model. `biased: true` marks a cross-validated one."
        },
    )
    retrain = fields.Nested(RetrainStatusSchema)


class PoolListArgsSchema(ma.Schema):
    limit = fields.Integer(
        load_default=limits.MAX_LIST_POOLS,
        validate=validate.Range(1, limits.MAX_LIST_POOLS),
        metadata={"description": "Most pools in this page."},
    )
    after = fields.String(
        validate=validate.Regexp(r"^[0-9a-f]{1,64}$"),
        metadata={"description": "The `next` of the previous page: this page starts after that pool id."},
    )


class PoolListSchema(ma.Schema):
    pools = fields.List(fields.Nested(PoolStatusSchema), metadata={"description": "In pool id order."})
    next = fields.String(
        allow_none=True, metadata={"description": "Pass it as `after` for the next page; null on the last page."}
    )


class ItemsAddedSchema(ma.Schema):
    added = fields.Integer()
    n_items = fields.Integer()
    version = fields.Integer(
        metadata={"description": "The pool's version once the items are in; labels sent with them bump it once more."}
    )
    job_id = fields.String(allow_none=True)


class TeachAnswerSchema(ma.Schema):
    accepted = fields.Integer()
    labels_version = fields.Integer()
    job_id = fields.String(
        allow_none=True,
        metadata={"description": "The refresh job queued for these labels; null when one queued earlier covers them."},
    )


class QueryItemSchema(ma.Schema):
    id = fields.String()
    score = fields.Float(
        metadata={
            "description": "Informativeness under the strategy; higher first. A batch "
            "strategy (auto, kcenter, ...) has no score per item: this is "
            "its place in the batch order, 1 first."
        }
    )
    predicted_label = LabelField(allow_none=True, metadata=_label_doc)
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float(), allow_none=True)
    audit = fields.Boolean(
        metadata={
            "description": "An audit item: drawn uniformly at random from the unlabeled items (the pool's "
            "`stopping.audit` rate), not chosen by the strategy. Teach it without a `split` and its label "
            "goes to the evaluation split."
        }
    )


class LeaseSchema(ma.Schema):
    expires_at = fields.Float(metadata={"description": "Unix time when the lease on these items ends."})
    annotator = fields.String(allow_none=True)


class QueryAnswerSchema(ma.Schema):
    pool_id = fields.String()
    strategy = fields.String()
    model_version = fields.Integer(allow_none=True)
    labels_version = fields.Integer()
    ranked_labels_version = fields.Integer(
        metadata={"description": "The labels_version the ranking reflects; below labels_version while a retrain runs."}
    )
    cold_start = fields.Boolean()
    stop = fields.Nested(StopSchema, metadata=_stop_doc)
    lease = fields.Nested(
        LeaseSchema,
        allow_none=True,
        metadata={"description": "The lease on the returned items; null when leasing is off."},
    )
    items = fields.List(fields.Nested(QueryItemSchema))


class QueryPendingSchema(ma.Schema):
    pool_id = fields.String()
    strategy = fields.String()
    status = fields.String(metadata={"description": "Always `pending`: the ranking is being computed."})
    detail = fields.String()
    job_id = fields.String(
        allow_none=True,
        metadata={
            "description": "The refresh that computes it: poll /v1/jobs/{job_id}, or ask again after Retry-After."
        },
    )


class MetricsSchema(ma.Schema):
    source = fields.String(
        metadata={
            "description": "`eval`: measured on the evaluation items; `audit`: the same, when every one of "
            "them is an audit item; `cross_validation`: an estimate on the labeled items (biased).",
            "enum": ["eval", "audit", "cross_validation"],
        }
    )
    n = fields.Integer(metadata={"description": "Items the metrics were computed on."})
    accuracy = fields.Float()
    macro_f1 = fields.Float()
    log_loss = fields.Float(
        allow_none=True, metadata={"description": "null when an evaluation item has a class the model never saw."}
    )
    recall = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={"description": "Per class."})


class EstimateSchema(ma.Schema):
    metric = fields.String(metadata={"enum": ["accuracy"]})
    value = fields.Float()
    low = fields.Float(metadata={"description": "Lower end of the Wilson score interval."})
    high = fields.Float(metadata={"description": "Upper end of the Wilson score interval."})
    n = fields.Integer(metadata={"description": "Items the estimate was computed on."})
    level = fields.Float(metadata={"description": "Confidence of the interval."})
    source = fields.String(
        metadata={
            "enum": ["eval", "audit", "cross_validation"],
            "description": "`audit` when every evaluation item is an audit item a query served, `eval` when "
            "some were labeled `split: eval` by the client, `cross_validation` without evaluation items.",
        }
    )
    biased = fields.Boolean(
        metadata={
            "description": "true for a cross-validated estimate: the labeled items were chosen for being hard, "
            "so it is not an estimate of the accuracy on the pool. Evaluation items drawn at random from the pool "
            "stay a random sample whichever model is scored on them, so their estimate is unbiased."
        }
    )


class HistoryEntrySchema(ma.Schema):
    model_version = fields.Integer()
    n_labels = fields.Integer(metadata={"description": "Training labels the model was fitted on."})
    n_eval = fields.Integer()
    metrics = fields.Nested(
        MetricsSchema,
        allow_none=True,
        metadata={"description": "null without evaluation items while a class has fewer than two labels."},
    )
    estimate = fields.Nested(
        EstimateSchema,
        allow_none=True,
        metadata={"description": "The model's accuracy with a 90 % interval, from the same items as `metrics`."},
    )
    kappa_with_previous = fields.Float(
        allow_none=True,
        metadata={
            "description": "Cohen's kappa between this model's and the previous one's predictions on the stop set."
        },
    )
    stop_set_size = fields.Integer()
    fit_seconds = fields.Float()
    score_seconds = fields.Float()
    eval_seconds = fields.Float()
    finished_at = fields.Float(metadata={"description": "Unix time."})
    stop = fields.Nested(StopSchema, metadata={"description": "The stopping rules as of this model version."})


class HistorySchema(ma.Schema):
    pool_id = fields.String()
    stopping = fields.Nested(StoppingSchema)
    stop = fields.Nested(StopSchema, metadata=_stop_doc)
    versions = fields.List(fields.Nested(HistoryEntrySchema), metadata={"description": "Oldest first."})


class CurveArgsSchema(ma.Schema):
    metric = fields.String(
        validate=validate.OneOf(METRICS), metadata={"description": "Defaults to the target's metric, else accuracy."}
    )


class PredictionSchema(ma.Schema):
    id = fields.String(
        allow_none=True,
        metadata={
            "description": "The item asked for, when the call gave `ids`; null for rows of `features` or `texts`, "
            "which are answered in the order given."
        },
    )
    predicted_label = LabelField(metadata=_label_doc)
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())


class PredictAnswerSchema(ma.Schema):
    pool_id = fields.String()
    model_version = fields.Integer()
    predictions = fields.List(fields.Nested(PredictionSchema))


class JobSchema(ma.Schema):
    job_id = fields.String()
    status = fields.String(metadata={"description": "queued, started, finished, failed, scheduled..."})
    enqueued_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    result = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)


class HealthSchema(ma.Schema):
    status = fields.String()


class ReadySchema(ma.Schema):
    status = fields.String()
    redis = fields.Boolean()
    workers = fields.Integer()
