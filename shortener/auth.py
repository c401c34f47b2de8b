"""Authentication for the API: HTTP Basic or an API token (``Authorization: Bearer``), and the
scopes a request carries. Failures are problem+json with a challenge for each scheme.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

from flask import Response, current_app, request
from flask_httpauth import HTTPBasicAuth, HTTPTokenAuth, MultiAuth
from werkzeug.datastructures import Authorization

from .problems import problem_response
from .services.errors import Forbidden
from .services.tokens import SCOPES, USERS_ADMIN, scopes_of
from .storage.records import UserRecord

REALM = "shortener"
CHALLENGES = (f'Basic realm="{REALM}"', f'Bearer realm="{REALM}"')
ALL_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True, slots=True)
class Credential:
    """Who the request speaks for, and how: a password (``token_id`` None) or a token."""

    user: UserRecord
    scopes: frozenset[str]
    token_id: int | None

    def allows(self, scope: str) -> bool:
        """A password carries the user's whole authority; a token only its scopes."""
        return self.token_id is None or scope in self.scopes

    @property
    def grantable(self) -> frozenset[str] | None:
        """Scopes this credential may put on a new token (None: all the owner may hold)."""
        return None if self.token_id is None else self.scopes


def _scheme() -> str:
    return request.headers.get("Authorization", "").partition(" ")[0].lower()


class StrictBasicAuth(HTTPBasicAuth):
    """Only the Basic scheme, strict base64 and UTF-8 (RFC 7617); anything else is no credentials.

    Flask-HTTPAuth's own parser ignores the scheme (so ``Bearer <base64 of name:password>``
    signed in), skips non-base64 characters and falls back to latin-1.
    """

    def is_compatible_auth(self, headers) -> bool:
        return _scheme() == "basic"  # RFC 9110: scheme names are case-insensitive

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


class StrictTokenAuth(HTTPTokenAuth):
    """``Authorization: Bearer <token>`` only: never a query parameter or another header."""

    def is_compatible_auth(self, headers) -> bool:
        return _scheme() == "bearer"

    def get_auth(self) -> Authorization | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return Authorization("bearer", token=token)


basic_auth = StrictBasicAuth(realm=REALM)
token_auth = StrictTokenAuth(scheme="Bearer", realm=REALM)
# A Bearer header goes to the token check; anything else (or nothing) to strict Basic.
multi_auth = MultiAuth(basic_auth, token_auth)


@basic_auth.verify_password
def _verify_password(username: str, password: str) -> Credential | None:
    """The verified credential becomes Flask-HTTPAuth's ``current_user()``."""
    services = current_app.extensions["shortener"]
    user = services.users.authenticate(username or "", password or "")
    if user is None:
        return None
    limits = current_app.extensions["shortener.limits"]
    limits.identified("user", user.id, user.password_hash)  # 429 past the limit
    return Credential(user, scopes_of(user), None)


@token_auth.verify_token
def _verify_token(token: str) -> Credential | None:
    use = current_app.extensions["shortener"].tokens.authenticate(token)
    if use is None:
        return None
    current_app.extensions["shortener.limits"].identified("token", use.token_id, token)
    return Credential(use.user, use.scopes, use.token_id)


def _roles(credential: Credential) -> tuple[str, ...]:
    """Scopes are Flask-HTTPAuth roles: a password holds every one (the user's whole
    authority, which the services then check); a token holds only its own."""
    return tuple(ALL_SCOPES if credential.token_id is None else credential.scopes)


basic_auth.get_user_roles(_roles)
token_auth.get_user_roles(_roles)


def _authentication_failed(status: int) -> Response:
    """Every 401 names both schemes: MultiAuth alone would send only the chosen one's."""
    if status == 403:  # raised, not returned: Flask-HTTPAuth would add a challenge
        raise Forbidden(
            f"This token lacks the scope '{required_scope()}', which this request needs; "
            "create a token that has it."
        )
    response = problem_response(
        401,
        detail="Send valid credentials: HTTP Basic, or an API token as 'Authorization: Bearer'.",
    )
    for challenge in CHALLENGES:
        response.headers.add("WWW-Authenticate", challenge)
    return response


basic_auth.error_handler(_authentication_failed)
token_auth.error_handler(_authentication_failed)


def login_required(scope: str | None = None, *, optional: bool = False):
    """Authentication (401), then the scope as a role (403)."""
    return multi_auth.login_required(role=scope, optional=optional or None)


def required_scope() -> str | None:
    """The scope the operation being served declares (for the 403 message)."""
    view = current_app.view_functions.get(request.endpoint or "")
    method = getattr(getattr(view, "view_class", None), request.method.lower(), None)
    return getattr(getattr(method, "operation", None), "scope", None)


def current_credential() -> Credential | None:
    """The verified credential, or None on a public operation called without one."""
    return multi_auth.current_user()


def current_user() -> UserRecord:
    credential = current_credential()
    if credential is None:  # only reachable if an operation forgot to declare its scope
        raise RuntimeError("current_user() outside an authenticated operation")
    return credential.user


def acting_user() -> UserRecord:
    """The user as an actor on other users' things: an admin's token needs users:admin."""
    user = current_user()
    if user.is_admin and not current_credential().allows(USERS_ADMIN):
        return replace(user, is_admin=False)
    return user
