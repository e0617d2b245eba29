"""Schemas of Label Studio's ML-backend calls, as Label Studio 1.23 sends them."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from sieve import limits
from sieve.labelstudio.protocol import PROJECT_PATTERN, is_project
from sieve.service.fields import storable


def _is_project(value: str) -> None:
    if not is_project(value):
        raise ma.ValidationError('must be Label Studio\'s "<project id>.<created unix time>"')


_project = dict(
    required=True,
    validate=_is_project,
    metadata={"description": 'Label Studio\'s "<project id>.<created unix time>".', "pattern": PROJECT_PATTERN},
)


class LabelStudioSetupSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # Label Studio may send more than Sieve reads

    project = fields.String(**_project)
    schema = fields.String(required=True, validate=storable, metadata={"description": "The label config (XML)."})
    hostname = fields.String(
        allow_none=True,
        validate=[validate.Length(max=2000), storable],
        metadata={
            "description": "Where workers reach Label Studio to push predictions (unless SIEVE_LABELSTUDIO_URL): "
            "an origin listed in SIEVE_LABELSTUDIO_ORIGINS, else a 422. A new one drops the stored "
            "token unless access_token comes with it."
        },
    )
    access_token = fields.String(
        allow_none=True,
        load_only=True,
        validate=[validate.Length(max=2000), storable],
        metadata={"description": "Kept in Redis for the push; never answered nor logged."},
    )
    extra_params = fields.Raw(
        allow_none=True,
        metadata={
            "description": "The ML backend's extra params: a JSON object, or its text. `vector_field` names the task "
            "data field holding each task's vector (a list of numbers), for any Choices project."
        },
    )


class LabelStudioPredictSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    tasks = fields.List(fields.Dict(), required=True, validate=validate.Length(max=limits.MAX_PREDICT_ROWS))
    project = fields.String(**_project)
    label_config = fields.String(
        allow_none=True, validate=storable, metadata={"description": "Read when Sieve has no pool for the project yet."}
    )
    params = fields.Raw(allow_none=True)


class LabelStudioModelVersionSchema(ma.Schema):
    model_version = fields.String()


class LabelStudioVersionsSchema(ma.Schema):
    versions = fields.List(fields.String())


class LabelStudioHealthSchema(ma.Schema):
    status = fields.String()
    model_class = fields.String()


class LabelStudioChoicesValueSchema(ma.Schema):
    choices = fields.List(fields.String())


class LabelStudioResultSchema(ma.Schema):
    from_name = fields.String()
    to_name = fields.String()
    type = fields.String()
    value = fields.Nested(LabelStudioChoicesValueSchema)


class LabelStudioTaskPredictionSchema(ma.Schema):
    result = fields.List(
        fields.Nested(LabelStudioResultSchema), metadata={"description": "Empty before a model exists."}
    )
    score = fields.Float(metadata={"description": "Low: most informative under the pool's strategy."})
    model_version = fields.String()


class LabelStudioPredictAnswerSchema(ma.Schema):
    results = fields.List(
        fields.Nested(LabelStudioTaskPredictionSchema), metadata={"description": "One per task, in order."}
    )


class LabelStudioWebhookAnswerSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    status = fields.String(metadata={"description": "ok, or ignored (with a reason): always a 2xx."})
    reason = fields.String()
    action = fields.String()
