"""Rate limits: Flask-Limiter's storage and strategy, applied by one before and one after hook.

- ``API_RATE_LIMIT`` counts every request under /api/ except the root and the Swagger UI page
  with its static files (docs.py). A request to an operation that needs credentials, sent
  with an ``Authorization`` header, is counted once it is authenticated, per identity: the
  user (every password of theirs, however the header is spelt: ``Bearer  T``, ``bearer T``)
  or the API token. Counting the header itself would give every spelling of one credential
  an allowance of its own. A request that fails to authenticate is counted by
  ``AUTH_FAIL_LIMIT`` instead; every other request (no credentials, a public operation, an
  unknown route) per client address.
- ``AUTH_FAIL_LIMIT`` counts ``401`` answers under /api/ per client address; once it is used
  up, every /api/ request from that address answers ``429`` until the window ends. Wrong
  passwords of password-protected links count here too, and once it is used up a password
  for a link is refused with ``429`` before it is checked (link_passwords.py).
- ``NOT_FOUND_LIMIT`` counts ``404`` answers of ``/<slug>`` (GET, HEAD and POST) per client
  address and turns only further ``404`` answers into ``429``: a slug that is found never
  touches the storage.

The client address is ``request.remote_addr``, which ProxyFix sets from ``X-Forwarded-For``
only when ``SHORTENER_TRUSTED_PROXIES`` says so. If the storage (Redis) fails, requests are
served without limits and the failure is logged: an outage of the limiter is not an outage of
the shortener.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.strategies import RateLimiter

from . import docs
from .declarations import declared_operation
from .metrics import RATE_LIMITED
from .problems import is_api_path, problem_response
from .services.errors import ShortenerError
from .settings import ConfigurationError, Settings

NAMESPACE = "shortener"  # first part of every key, for a Redis shared with other programs
# GET|HEAD /<slug>, and POST /<slug> (a password-protected link's form): 404s count alike.
REDIRECT_ENDPOINTS = ("redirects.follow", "redirects.unlock")
API_ROOT_ENDPOINT = "root"
# A Redis that does not answer must not hold requests for long (the URI's own options win).
REDIS_TIMEOUT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
STORAGE_WARNING_INTERVAL = 10.0

T = TypeVar("T")


class RateLimited(ShortenerError):
    """A limit is used up: raised once an identity is known (see ``RateLimits.identified``)."""

    status = 429
    title = "Too Many Requests"

    def response(self) -> Response:
        return problem_response(429, detail=self.detail, headers=self.headers)


@dataclass(frozen=True)
class _Counted:
    """One limit and the identifiers of the count it applies to."""

    limit: RateLimitItem
    identifiers: tuple[str, ...]


class RateLimits:
    """The three limits of shortener over one Flask-Limiter storage and strategy."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        uri = settings.ratelimit_storage_uri
        options: dict = {"wrap_exceptions": True}
        if uri.startswith("redis"):
            options.update(REDIS_TIMEOUT_OPTIONS)
        self.extension = Limiter(
            _client_address,
            storage_uri=uri,
            storage_options=options,
            strategy="fixed-window",
        )
        # Flask-Limiter registers its own before/after/teardown hooks on init_app unless the
        # app already lists the extension. shortener declares no Flask-Limiter route limits, so
        # those hooks would only cost time: measured at 30-70 us per request, more than the
        # whole redirect. Listing it first keeps them off; only the storage and strategy are
        # used, by the two hooks below.
        app.extensions.setdefault("limiter", set()).add(self.extension)
        try:
            self.extension.init_app(app)
        except Exception as error:  # limits' ConfigurationError: a storage package is missing
            raise ConfigurationError(
                f"SHORTENER_RATELIMIT_STORAGE_URI {uri!r} cannot be used: {error}"
            ) from error
        self.api = parse(settings.api_rate_limit)
        self.auth_fail = parse(settings.auth_fail_limit)
        self.not_found = parse(settings.not_found_limit)
        self._warned_at = -math.inf

    @property
    def strategy(self) -> RateLimiter:
        return self.extension.limiter

    # -- the hooks -------------------------------------------------------------------------
    def before_request(self) -> Response | None:
        if not is_api_path(request.path):
            return None  # the redirect's hot path: nothing else runs
        address = _client_address()
        failures = _Counted(self.auth_fail, (NAMESPACE, "auth-fail", address))
        if self._safely(lambda: self.strategy.test(failures.limit, *failures.identifiers)) is False:
            return self._refuse(failures, "Too many failed authentications from your address.")
        if request.endpoint == API_ROOT_ENDPOINT or request.blueprint == docs.BLUEPRINT_NAME:
            return None
        if "Authorization" in request.headers and _needs_credentials():
            g.shortener_identity_pending = True  # counted by identified(), or as a 401
            return None
        counted = _Counted(self.api, (NAMESPACE, "api", f"address:{address}"))
        refused = self._count(counted, "Too many requests from your address.")
        return refused.response() if refused else None

    def identified(self, kind: str, identity: int, unique: str) -> None:
        """Called once the request's credential is verified: counts it for the identity
        (``user`` and its id for a password, ``token`` and its id for a token), and raises
        RateLimited past the limit. Ids repeat from one database to the next, and a Redis may
        be shared by several, so the key also holds a digest of ``unique`` (the user's salted
        password hash, or the token): never a credential itself."""
        if not g.pop("shortener_identity_pending", False):
            return  # not a counted request (the root, the docs), or counted already
        digest = hashlib.sha256(unique.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        counted = _Counted(self.api, (NAMESPACE, "api", f"{kind}:{identity}:{digest}"))
        refused = self._count(counted, "Too many requests from these credentials.")
        if refused:
            raise refused

    # -- passwords of links (link_passwords.py): the same count as failed API logins -----
    def refuse_if_failing(self) -> None:
        """Raises RateLimited (429) when this address has used up ``AUTH_FAIL_LIMIT``."""
        failures = _Counted(self.auth_fail, (NAMESPACE, "auth-fail", _client_address()))
        if self._safely(lambda: self.strategy.test(failures.limit, *failures.identifiers)) is False:
            raise self._refusal(failures, "Too many failed authentications from your address.")

    def count_failure(self) -> None:
        """A wrong password for a link, counted as a failed authentication."""
        failures = _Counted(self.auth_fail, (NAMESPACE, "auth-fail", _client_address()))
        self._safely(lambda: self.strategy.hit(failures.limit, *failures.identifiers))

    def _count(self, counted: _Counted, reason: str) -> RateLimited | None:
        allowed = self._safely(lambda: self.strategy.hit(counted.limit, *counted.identifiers))
        if allowed is False:
            return self._refusal(counted, reason)
        if allowed:
            g.shortener_rate_limit = counted
        return None

    def after_request(self, response: Response) -> Response:
        status = response.status_code
        if status == 404 and request.endpoint in REDIRECT_ENDPOINTS:
            probes = _Counted(self.not_found, (NAMESPACE, "not-found", _client_address()))
            if self._safely(lambda: self.strategy.hit(probes.limit, *probes.identifiers)) is False:
                return self._refuse(probes, "Too many requests for unknown short links.")
            return response
        if not is_api_path(request.path):
            return response
        if status == 401:
            failures = _Counted(self.auth_fail, (NAMESPACE, "auth-fail", _client_address()))
            self._safely(lambda: self.strategy.hit(failures.limit, *failures.identifiers))
        counted = g.pop("shortener_rate_limit", None)
        if counted is not None:
            headers = self._safely(lambda: self._headers(counted))
            if headers:
                response.headers.update(headers)
        return response

    # -- helpers ---------------------------------------------------------------------------
    def _headers(self, counted: _Counted) -> dict[str, str]:
        reset_at, remaining = self.strategy.get_window_stats(counted.limit, *counted.identifiers)
        seconds = max(0, math.ceil(reset_at - time.time()))
        return {
            "RateLimit-Limit": str(counted.limit.amount),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(seconds),
        }

    def _refuse(self, counted: _Counted, reason: str) -> Response:
        return self._refusal(counted, reason).response()

    def _refusal(self, counted: _Counted, reason: str) -> RateLimited:
        RATE_LIMITED.labels(counted.identifiers[1]).inc()  # api, auth-fail or not-found
        headers = self._safely(lambda: self._headers(counted)) or {
            "RateLimit-Limit": str(counted.limit.amount),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(counted.limit.get_expiry()),
        }
        retry_after = max(1, int(headers["RateLimit-Reset"]))
        headers["Retry-After"] = str(retry_after)
        return RateLimited(
            f"{reason} The limit is {_describe(counted.limit)}; "
            f"try again in {retry_after} seconds.",
            headers=headers,
        )

    def _safely(self, action: Callable[[], T]) -> T | None:
        """The action's result, or None (no limit applied) when the storage fails."""
        try:
            return action()
        except StorageError as error:
            now = time.monotonic()
            if now - self._warned_at >= STORAGE_WARNING_INTERVAL:
                self._warned_at = now
                current_app.logger.warning(
                    "rate-limit storage unavailable, requests are not limited: %s",
                    error.storage_error,
                )
            return None


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _needs_credentials() -> bool:
    """Whether the request goes to an operation that authenticates (so it is counted for its
    identity, or as a failed authentication)."""
    view = current_app.view_functions.get(request.endpoint or "")
    declared = declared_operation(view, request.method) if view is not None else None
    return declared is not None and declared.authenticated


def _describe(limit: RateLimitItem) -> str:
    unit = limit.GRANULARITY.name
    per = unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"
    return f"{limit.amount} per {per}"


def init_app(app: Flask, settings: Settings) -> RateLimits:
    limits = RateLimits(app, settings)
    app.extensions["shortener.limits"] = limits
    app.before_request(limits.before_request)
    app.after_request(limits.after_request)
    return limits
