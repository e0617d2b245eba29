"""The request parser of every blueprint: webargs', with every undecodable JSON body a 400, and the binary
bodies of create and add items read as the JSON they stand for."""

from __future__ import annotations

import json

from flask_smorest import Blueprint
from webargs.core import is_json, missing
from webargs.flaskparser import FlaskParser, abort

from sieve.service import tabular_bodies


class BodyParser(FlaskParser):
    def load_json(self, req, schema):
        if tabular_bodies.is_tabular():
            return tabular_bodies.read_body()
        # webargs' own load_json answers 400 for malformed JSON only; json.loads also fails with RecursionError
        # on deep nesting and ValueError on integers of more than 4300 digits: the body is at fault there too.
        # So the JSON location is loaded here in full, as webargs documents for parsers that need their own.
        if not is_json(req.mimetype):
            return missing
        body = req.get_data(cache=True)
        if not body:
            return missing
        try:
            return json.loads(body.decode("utf-8"))
        except (RecursionError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            abort(400, exc=error, messages={"json": ["Invalid JSON body."]})


class SieveBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()
