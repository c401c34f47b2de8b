"""HTTP Basic authentication for the API, answered with problem+json and a Basic challenge."""

from __future__ import annotations

from flask import Response, current_app
from flask_httpauth import HTTPBasicAuth

from .problems import problem_response
from .storage.records import UserRecord

REALM = "shortener"

basic_auth = HTTPBasicAuth(realm=REALM)


@basic_auth.verify_password
def _verify_password(username: str, password: str) -> UserRecord | None:
    return current_app.extensions["shortener"].users.authenticate(username or "", password or "")


@basic_auth.error_handler
def _authentication_failed(status: int) -> Response:
    # Flask-HTTPAuth adds WWW-Authenticate: Basic realm="shortener" to the 401.
    detail = (
        "Send valid credentials with HTTP Basic authentication."
        if status == 401
        else "You may not do this."
    )
    return problem_response(status, detail=detail)


def current_user() -> UserRecord:
    user = basic_auth.current_user()
    if user is None:  # only reachable if a view forgot login_required
        raise RuntimeError("current_user() outside an authenticated view")
    return user
