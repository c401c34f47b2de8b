"""GET /api/v1.0/: public, the entry point a client starts from."""

from __future__ import annotations

from flask import Response, url_for
from flask_restful import Resource

from ..schemas.root import RootSchema
from .http import json_response

ROOT_SCHEMA = RootSchema()


class Root(Resource):
    def get(self) -> Response:
        return json_response(
            ROOT_SCHEMA.dump(
                {
                    "uri": url_for("root", _external=True),
                    "links": url_for("links", _external=True),
                    "users": url_for("users", _external=True),
                    "stats": url_for("stats", _external=True),
                    "tokens": url_for("tokens", _external=True),
                }
            )
        )
