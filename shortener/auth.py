"""HTTP Basic authentication for the API, answered with problem+json and a Basic challenge."""

from __future__ import annotations

import base64

from flask import Response, current_app, request
from flask_httpauth import HTTPBasicAuth
from werkzeug.datastructures import Authorization

from .problems import problem_response
from .storage.records import UserRecord

REALM = "shortener"


class StrictBasicAuth(HTTPBasicAuth):
    """Only the Basic scheme, strict base64 and UTF-8 (RFC 7617); anything else is no credentials.

    Flask-HTTPAuth's own parser ignores the scheme (so ``Bearer <base64 of name:password>``
    signed in), skips non-base64 characters and falls back to latin-1.
    """

    def get_auth(self) -> Authorization | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeError):  # binascii.Error and non-ASCII input are ValueErrors
            return None
        username, colon, password = decoded.partition(":")
        if not colon:
            return None
        return Authorization("basic", {"username": username, "password": password})


basic_auth = StrictBasicAuth(realm=REALM)


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
