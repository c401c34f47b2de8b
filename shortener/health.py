"""GET /health (liveness) and GET /health/ready (readiness) for load balancers and orchestrators.

Both are public, cheap and never cached. Liveness touches nothing but the process; readiness
runs one trivial query, so a worker that cannot reach its database answers ``503`` with
``Retry-After`` (through the one problem renderer) and is taken out of rotation until the
database is back.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app

from .declarations import PUBLIC, described

blueprint = Blueprint("health", __name__)


@blueprint.get("/health")
@described("GET", "getLiveness", "Liveness: the process answers", scope=PUBLIC, tags=("health",))
def live() -> Response:
    return _status("ok")


@blueprint.get("/health/ready")
@described("GET", "getReadiness", "Readiness: the database answers", scope=PUBLIC,
           errors=(503,), tags=("health",))  # fmt: skip
def ready() -> Response:
    current_app.extensions["shortener"].database.ping()  # DatabaseUnavailable -> 503
    return _status("ready")


@blueprint.after_request
def _never_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _status(status: str) -> Response:
    return Response(json.dumps({"status": status}) + "\n", mimetype="application/json")


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
