"""Configuration defaults and their validation, read once at start-up.

Every key can be set as ``SHORTENER_<KEY>`` in the environment (values are parsed as JSON
when they can be, so ``SHORTENER_SLUG_LENGTH=9`` is the integer 9).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULTS: dict[str, Any] = {
    "SLUG_LENGTH": 7,
    "MAX_TARGET_LENGTH": 4096,
    "REDIRECT_MAX_AGE": 90,
    "PUBLIC_URL": None,
    "TRUSTED_PROXIES": 0,
    "PASSWORD_HASH_METHOD": "scrypt",
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "ANONYMIZE_IPS": True,
    "VISIT_FLUSH_INTERVAL": 1.0,
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

    @property
    def redirect_cache_control(self) -> str:
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
        )


def _text(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"SHORTENER_{key} must be a non-empty string, not {value!r}.")
    return value


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
