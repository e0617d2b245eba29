"""The request parser of every blueprint: webargs', with every undecodable JSON body a 400."""

from __future__ import annotations

from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser


class BodyParser(FlaskParser):
    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except (RecursionError, ValueError) as error:
            # webargs answers 400 for malformed JSON only; json.loads also fails with RecursionError on deep
            # nesting and ValueError on integers of more than 4300 digits: the body is at fault there too.
            self._handle_invalid_json_error(error, req)


class SieveBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()
