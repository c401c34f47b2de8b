"""Target URL rules: absolute http(s) with a host, nothing that could smuggle a header."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, urlsplit

import idna

ALLOWED_SCHEMES = frozenset({"http", "https"})
# Characters kept as they are in path, query and fragment; everything else is percent-encoded.
_SAFE_IN_URL = "!#$%&'()*+,/:;=?@[]~-._"


class TargetRejected(ValueError):
    """The target is not acceptable; the message says why in words a client can show."""


def normalize_target(raw: str, *, max_length: int, own_hosts: Iterable[str] = ()) -> str:
    """Returns the target as it will be stored and sent in ``Location``, or raises."""
    if not raw:
        raise TargetRejected("Must not be empty.")
    if any(_is_forbidden_char(char) for char in raw):
        raise TargetRejected("Must not contain whitespace or control characters.")
    try:
        parts = urlsplit(raw)
    except ValueError as error:  # e.g. an unbalanced IPv6 bracket
        raise TargetRejected("Must be a valid URL.") from error
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise TargetRejected("Must be an absolute URL with the scheme http or https.")
    if not raw[len(parts.scheme) :].startswith("://") or not parts.netloc:
        raise TargetRejected("Must be an absolute URL with a host, such as https://example.com/.")
    if "@" in parts.netloc:
        raise TargetRejected("Must not contain a user name or password.")
    host = _ascii_host(parts)
    if host.lower().rstrip(".") in {own.lower().rstrip(".") for own in own_hosts if own}:
        raise TargetRejected("Must not point at this shortener (it would redirect to itself).")
    normalized = SplitResult(
        scheme,
        _netloc(parts, host),
        quote(parts.path, safe=_SAFE_IN_URL),
        quote(parts.query, safe=_SAFE_IN_URL),
        quote(parts.fragment, safe=_SAFE_IN_URL),
    ).geturl()
    if len(normalized) > max_length:
        raise TargetRejected(f"Must be at most {max_length} characters long.")
    return normalized


def _is_forbidden_char(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Zs"}


def _ascii_host(parts: SplitResult) -> str:
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError as error:
        raise TargetRejected("Must have a valid host and port.") from error
    if not host:
        raise TargetRejected("Must be an absolute URL with a host, such as https://example.com/.")
    if host.isascii():
        if any(char in host for char in "%<>\"'`{}|\\^"):
            raise TargetRejected("Must have a valid host name.")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise TargetRejected("Must have a valid internationalized host name.") from error


def _netloc(parts: SplitResult, ascii_host: str) -> str:
    if parts.netloc.startswith("["):  # IPv6 literal: keep it exactly as given
        return parts.netloc
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{ascii_host}{port}"
