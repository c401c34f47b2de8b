"""Base class of every Resource that needs credentials."""

from __future__ import annotations

from flask_restful import Resource

from ..auth import basic_auth


class AuthenticatedResource(Resource):
    method_decorators = [basic_auth.login_required]
