"""Rate limits: Flask-Limiter's storage and strategy, applied by one before and one after hook.

- ``API_RATE_LIMIT`` counts every request under /api/ except the root and the Swagger UI page
  with its static files (docs.py), per credential (a SHA-256 of the ``Authorization`` header,
  so one credential shares one count in every worker) or, without credentials, per client
  address.
- ``AUTH_FAIL_LIMIT`` counts ``401`` answers under /api/ per client address; once it is used
  up, every /api/ request from that address answers ``429`` until the window ends.
- ``NOT_FOUND_LIMIT`` counts ``404`` answers of ``/<slug>`` per client address and turns only
  further ``404`` answers into ``429``: a slug that is found never touches the storage.

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
from .metrics import RATE_LIMITED
from .problems import is_api_path, problem_response
from .settings import ConfigurationError, Settings

NAMESPACE = "shortener"  # first part of every key, for a Redis shared with other programs
REDIRECT_ENDPOINT = "redirects.follow"
API_ROOT_ENDPOINT = "root"
# A Redis that does not answer must not hold requests for long (the URI's own options win).
REDIS_TIMEOUT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
STORAGE_WARNING_INTERVAL = 10.0

T = TypeVar("T")


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
        who = _credential_key() or f"address:{address}"
        counted = _Counted(self.api, (NAMESPACE, "api", who))
        allowed = self._safely(lambda: self.strategy.hit(counted.limit, *counted.identifiers))
        if allowed is False:
            whose = "these credentials" if who.startswith("credential:") else "your address"
            return self._refuse(counted, f"Too many requests from {whose}.")
        if allowed:
            g.shortener_rate_limit = counted
        return None

    def after_request(self, response: Response) -> Response:
        status = response.status_code
        if status == 404 and request.endpoint == REDIRECT_ENDPOINT:
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
        RATE_LIMITED.labels(counted.identifiers[1]).inc()  # api, auth-fail or not-found
        headers = self._safely(lambda: self._headers(counted)) or {
            "RateLimit-Limit": str(counted.limit.amount),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(counted.limit.get_expiry()),
        }
        retry_after = max(1, int(headers["RateLimit-Reset"]))
        headers["Retry-After"] = str(retry_after)
        return problem_response(
            429,
            detail=f"{reason} The limit is {_describe(counted.limit)}; "
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


def _credential_key() -> str | None:
    """A digest of the whole Authorization header: the credential itself is never stored."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    digest = hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()
    return f"credential:{digest}"


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
