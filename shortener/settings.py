"""Configuration defaults and their validation, read once at start-up.

Every key can be set as ``SHORTENER_<KEY>`` in the environment (values are parsed as JSON
when they can be, so ``SHORTENER_SLUG_LENGTH=9`` is the integer 9).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many
from limits.storage import SCHEMES as RATELIMIT_STORAGE_SCHEMES

DEFAULTS: dict[str, Any] = {
    "SLUG_LENGTH": 7,
    "MAX_TARGET_LENGTH": 4096,
    "REDIRECT_MAX_AGE": 90,
    "PUBLIC_URL": None,
    "TRUSTED_PROXIES": 0,
    "PASSWORD_HASH_METHOD": "scrypt",
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # The body of a batch (POST, PATCH, DELETE /api/v1.0/links/batch): 1,000 links with
    # targets of the longest length (SHORTENER_MAX_TARGET_LENGTH, 4,096) fit.
    "BATCH_MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "ANONYMIZE_IPS": True,
    "VISIT_FLUSH_INTERVAL": 0.25,
    "VISIT_BUFFER": 10_000,
    "REDIS_URL": None,
    "VISIT_STREAM": "shortener:visits",
    "VISIT_CLAIM_IDLE": 30.0,
    "LOCK_TIMEOUT_MS": 5000,
    "DATABASE_TIMEOUT_MS": 2000,
    "DATABASE_POOL_SIZE": 12,
    "STATEMENT_TIMEOUT_MS": 3000,
    "API_RATE_LIMIT": "600/minute",
    "AUTH_FAIL_LIMIT": "10/minute",
    "NOT_FOUND_LIMIT": "60/minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "CORS_ORIGINS": "",
    "REQUIRE_IF_MATCH": False,
    "METRICS_ALLOW": "127.0.0.0/8,::1/128",
    "LINK_CACHE_SIZE": 100_000,
    "LINK_CHANGES_FILE": None,
    "TRACKING_DISABLED_FOR": "",
    "HONOR_DO_NOT_TRACK": True,
    "GEOIP_DB": None,
    "WEBHOOK_ALLOW_PRIVATE": False,
    "WEBHOOK_POLL_INTERVAL": 1.0,
}


class ConfigurationError(RuntimeError):
    """A SHORTENER_* setting has a value the server cannot run with."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    slug_length: int
    max_target_length: int
    redirect_max_age: int
    public_url: str | None
    trusted_proxies: int
    password_hash_method: str
    anonymize_ips: bool
    visit_flush_interval: float
    # Visits a request worker keeps while the visit writer does not take them.
    visit_buffer: int
    # None: visits go from the workers to the local visit writer only.
    redis_url: str | None
    visit_stream: str
    # Seconds a read, unacknowledged stream entry waits before another consumer takes it.
    visit_claim_idle: float
    lock_timeout_ms: int
    # PostgreSQL: connecting, and waiting for a pooled connection's or a redirect's answer.
    database_timeout_ms: int
    database_pool_size: int
    # PostgreSQL: statement_timeout (the client waits a second longer for the answer).
    statement_timeout_ms: int
    api_rate_limit: str
    auth_fail_limit: str
    not_found_limit: str
    ratelimit_storage_uri: str
    # Empty: CORS off; ("*",): any origin, without credentials; else the exact origins allowed.
    cors_origins: tuple[str, ...]
    # PUT, PATCH and DELETE of an existing link, user or token need If-Match (else 428).
    require_if_match: bool
    # Who may read GET /metrics (everyone else gets 404).
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    # Links each worker keeps in memory for the redirect (0: every redirect reads the database).
    link_cache_size: int
    # The host's counter of link changes (services/link_cache.py); None: the default place.
    link_changes_file: str | None
    # Client addresses whose visits are not recorded (they are still redirected).
    tracking_disabled_for: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    # Requests with "DNT: 1" or "Sec-GPC: 1" are redirected without recording a visit.
    honor_do_not_track: bool
    # The largest body a batch of links may have (413 past it; other requests:
    # MAX_CONTENT_LENGTH).
    batch_max_content_length: int = DEFAULTS["BATCH_MAX_CONTENT_LENGTH"]
    # A MaxMind-format country or city database (GeoLite2-Country, -City): country rules and
    # the visits' country. None: country rules are refused, visits have no country.
    geoip_db: str | None = None
    # Webhooks may target private, loopback and link-local addresses (tests, a closed network).
    webhook_allow_private: bool = False
    # How often the webhook sender looks for messages that are due.
    webhook_poll_interval: float = 1.0

    @functools.cached_property
    def redirect_cache_control(self) -> str:
        """Read on every redirect, so worked out once."""
        if self.redirect_max_age == 0:
            return "no-store"
        return f"private, max-age={self.redirect_max_age}"

    @property
    def public_host(self) -> str | None:
        return urlsplit(self.public_url).hostname if self.public_url else None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            database_url=_text(config, "DATABASE_URL"),
            slug_length=_integer(config, "SLUG_LENGTH", 1, 64),
            max_target_length=_integer(config, "MAX_TARGET_LENGTH", 16, 65536),
            redirect_max_age=_integer(config, "REDIRECT_MAX_AGE", 0, 31_536_000),
            public_url=_public_url(config.get("PUBLIC_URL")),
            trusted_proxies=_integer(config, "TRUSTED_PROXIES", 0, 16),
            password_hash_method=_text(config, "PASSWORD_HASH_METHOD"),
            anonymize_ips=_boolean(config, "ANONYMIZE_IPS"),
            visit_flush_interval=_seconds(config, "VISIT_FLUSH_INTERVAL", 0.05, 60.0),
            visit_buffer=_integer(config, "VISIT_BUFFER", 100, 10_000_000),
            redis_url=_redis_url(config.get("REDIS_URL")),
            visit_stream=_text(config, "VISIT_STREAM"),
            visit_claim_idle=_seconds(config, "VISIT_CLAIM_IDLE", 0.1, 86_400.0),
            lock_timeout_ms=_integer(config, "LOCK_TIMEOUT_MS", 1, 600_000),
            database_timeout_ms=_integer(config, "DATABASE_TIMEOUT_MS", 100, 60_000),
            database_pool_size=_integer(config, "DATABASE_POOL_SIZE", 1, 1000),
            statement_timeout_ms=_integer(config, "STATEMENT_TIMEOUT_MS", 100, 3_600_000),
            api_rate_limit=_rate_limit(config, "API_RATE_LIMIT"),
            auth_fail_limit=_rate_limit(config, "AUTH_FAIL_LIMIT"),
            not_found_limit=_rate_limit(config, "NOT_FOUND_LIMIT"),
            ratelimit_storage_uri=_storage_uri(config, "RATELIMIT_STORAGE_URI"),
            cors_origins=_origins(config, "CORS_ORIGINS"),
            require_if_match=_boolean(config, "REQUIRE_IF_MATCH"),
            metrics_allow=_networks(config, "METRICS_ALLOW"),
            link_cache_size=_integer(config, "LINK_CACHE_SIZE", 0, 10_000_000),
            link_changes_file=_optional_text(config, "LINK_CHANGES_FILE"),
            tracking_disabled_for=_networks(config, "TRACKING_DISABLED_FOR"),
            honor_do_not_track=_boolean(config, "HONOR_DO_NOT_TRACK"),
            geoip_db=_geoip_db(config, "GEOIP_DB"),
            batch_max_content_length=_integer(
                config, "BATCH_MAX_CONTENT_LENGTH", 64 * 1024, 256 * 1024 * 1024
            ),
            webhook_allow_private=_boolean(config, "WEBHOOK_ALLOW_PRIVATE"),
            webhook_poll_interval=_seconds(config, "WEBHOOK_POLL_INTERVAL", 0.05, 60.0),
        )


def _networks(
    config: Mapping[str, Any], key: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CIDR networks separated by commas or spaces (``127.0.0.0/8,::1/128``); a bare address is
    a network of one; empty: none."""
    value = config.get(key)
    items = value.replace(",", " ").split() if isinstance(value, str) else None
    try:
        return tuple(ipaddress.ip_network(item) for item in items)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"SHORTENER_{key} must be networks in CIDR notation such as 127.0.0.0/8, separated "
            f"by commas or spaces, not {value!r}."
        ) from None


def _geoip_db(config: Mapping[str, Any], key: str) -> str | None:
    """A readable MaxMind database with country data, checked by opening it at start-up."""
    path = _optional_text(config, key)
    if path is None:
        return None
    from .services.geoip import GeoIPUnusable, open_database

    try:
        open_database(path).close()
    except GeoIPUnusable as error:
        raise ConfigurationError(f"SHORTENER_{key}: {error}") from None
    return path


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"SHORTENER_{key} must be a non-empty string, not {value!r}.")
    return value


def _optional_text(config: Mapping[str, Any], key: str) -> str | None:
    if config.get(key) in (None, ""):
        return None
    return _text(config, key)


def _integer(config: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = config.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"SHORTENER_{key} must be a whole number from {low} to {high}, not {value!r}."
        )
    return value


def _boolean(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise ConfigurationError(f"SHORTENER_{key} must be true or false, not {value!r}.")
    return value


def _seconds(config: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = config.get(key)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not low <= seconds <= high:
        raise ConfigurationError(
            f"SHORTENER_{key} must be a number of seconds from {low} to {high}, not {value!r}."
        )
    return seconds


def _public_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"SHORTENER_PUBLIC_URL must be an http(s) base URL such as https://sho.rt, "
            f"not {value!r}."
        )
    return value.rstrip("/")


def _redis_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    scheme = value.partition("://")[0] if isinstance(value, str) and "://" in value else None
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"SHORTENER_REDIS_URL must be a Redis URL such as redis://127.0.0.1:6379/0, "
            f"not {value!r}."
        )
    return value


def _rate_limit(config: Mapping[str, Any], key: str) -> str:
    """One limit in Flask-Limiter's notation: ``600/minute``, ``10 per second``, ``1000/hour``."""
    value = config.get(key)
    try:
        parsed = parse_many(value) if isinstance(value, str) else []
    except ValueError:
        parsed = []
    if len(parsed) != 1 or parsed[0].amount < 1:
        raise ConfigurationError(
            f"SHORTENER_{key} must be one rate limit such as 600/minute, not {value!r}."
        )
    return value


def _storage_uri(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    scheme = value.partition("://")[0] if isinstance(value, str) and "://" in value else None
    if scheme not in RATELIMIT_STORAGE_SCHEMES or scheme.startswith("async+"):
        raise ConfigurationError(
            f"SHORTENER_{key} must be a storage URI such as memory:// or "
            f"redis://127.0.0.1:6379/0, not {value!r}."
        )
    return value


def _origins(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Origins separated by spaces or commas (``https://app.example``), or ``*`` alone."""
    value = config.get(key)
    if isinstance(value, str):
        items = value.replace(",", " ").split()
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        items = None
    if items == ["*"]:
        return ("*",)
    origins = [_origin(item) for item in items] if items is not None else [None]
    if None in origins:
        raise ConfigurationError(
            f"SHORTENER_{key} must be origins such as https://app.example, separated by "
            f"spaces or commas, or * alone, not {value!r}."
        )
    return tuple(dict.fromkeys(origins))


def _origin(item: str) -> str | None:
    """``scheme://host[:port]`` in the form browsers send in ``Origin``, or None."""
    try:
        parts = urlsplit(item.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")
