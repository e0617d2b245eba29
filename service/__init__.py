"""HTTP layer: blueprints, marshmallow schemas and the problem+json error format."""
