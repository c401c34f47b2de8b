"""Target URL rules: absolute http(s) with a host, nothing that could smuggle a header.

What is stored, and sent in ``Location``, is always a valid RFC 3986 URI: a character that is
not allowed where it stands (a ``%`` not starting an escape, ``[`` or ``]`` in the path, a
second ``#``, a space-less non-ASCII letter) is percent-encoded rather than refused, so a
link pasted from a browser keeps working and means what it meant; a valid URI is kept as it
is. Hosts are checked, not repaired: every label 1-63 characters, at most 253 in all.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable
from urllib.parse import SplitResult, quote, urlsplit

import idna

ALLOWED_SCHEMES = frozenset({"http", "https"})
# RFC 3986: path = *( pchar / "/" ); query and fragment = *( pchar / "/" / "?" ), where
# pchar = unreserved / pct-encoded / sub-delims / ":" / "@". Everything else is encoded.
_SUB_DELIMS = "!$&'()*+,;="
_SAFE_IN_PATH = _SUB_DELIMS + ":@/%"  # unreserved characters are always kept by quote()
_SAFE_IN_QUERY = _SAFE_IN_PATH + "?"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A registered name as a DNS host name can be: letters, digits and these, split by dots.
_ASCII_HOST = re.compile(r"[a-z0-9._~!$&()*+,;=-]+")
_MAX_LABEL = 63
_MAX_HOST = 253
# A host browsers read as an IPv4 address: one to four dot-separated numbers, each decimal,
# octal (leading 0) or hex (0x), as inet_aton takes them: 127.1, 2130706433, 0x7f000001.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    if _is_own_host(host, own_hosts):
        raise TargetRejected("Must not point at this shortener (it would redirect to itself).")
    normalized = SplitResult(
        scheme,
        _netloc(parts, host),
        _encoded(parts.path, _SAFE_IN_PATH),
        _encoded(parts.query, _SAFE_IN_QUERY),
        _encoded(parts.fragment, _SAFE_IN_QUERY),
    ).geturl()
    if len(normalized) > max_length:
        raise TargetRejected(f"Must be at most {max_length} characters long.")
    return normalized


def _encoded(component: str, safe: str) -> str:
    """``component`` with every character RFC 3986 does not allow there percent-encoded; the
    escapes already in it are kept, a ``%`` that starts none becomes ``%25``."""
    return quote(_STRAY_PERCENT.sub("%25", component), safe=safe)


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
    if parts.netloc.startswith("["):
        try:  # an IPv6 address; no zone ("%eth0") and no IPvFuture ("v1.x"), which no browser takes
            if "%" in host:
                raise ValueError("a zone identifier")
            ipaddress.IPv6Address(host)
        except ValueError as error:
            raise TargetRejected("Must have a valid IPv6 address in brackets.") from error
        return host
    if host.isascii():
        if not _ASCII_HOST.fullmatch(host):
            raise TargetRejected("Must have a valid host name.")
    else:
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise TargetRejected("Must have a valid internationalized host name.") from error
    _check_labels(host)
    return host


def _check_labels(host: str) -> None:
    """Each dot-separated label 1-63 characters (one final dot is the DNS root), 253 in all."""
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if any(not label for label in labels):
        raise TargetRejected("Must have a valid host name: a part between dots is empty.")
    if any(len(label) > _MAX_LABEL for label in labels):
        raise TargetRejected(
            f"Must have a valid host name: each part between dots is at most {_MAX_LABEL} "
            "characters."
        )
    if len(name) > _MAX_HOST:
        raise TargetRejected(f"Must have a valid host name of at most {_MAX_HOST} characters.")


def _netloc(parts: SplitResult, ascii_host: str) -> str:
    if parts.netloc.startswith("["):  # IPv6 literal: keep it exactly as given
        return parts.netloc
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{ascii_host}{port}"


def _is_own_host(host: str, own_hosts: Iterable[str]) -> bool:
    """Whether ``host`` names one of ``own_hosts`` under any spelling: the same name, the same
    address however written, or a loopback one (``localhost``, ``127.1``, ``[::1]``) when the
    shortener itself is served on loopback. Names are never looked up in DNS."""
    name = host.lower().rstrip(".")
    address = _address_of(name)
    for own in own_hosts:
        if not own:
            continue
        own_name = own.lower().strip("[]").rstrip(".")
        if name == own_name:
            return True
        own_address = _address_of(own_name)
        if address is not None and address == own_address:
            return True
        if _is_loopback(name, address) and _is_loopback(own_name, own_address):
            return True
    return False


def _address_of(host: str) -> _Address | None:
    """The address a host spells, normalized (an IPv4-mapped IPv6 address is its IPv4), or
    None for a name."""
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return None
        return address.ipv4_mapped or address
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".") or "x"))
    except OSError:  # e.g. a part out of range: not an address browsers would reach
        return None


def _is_loopback(name: str, address: _Address | None) -> bool:
    """This machine: localhost and its subdomains (RFC 6761), a loopback address, or the
    unspecified address (connecting to 0.0.0.0 reaches this machine)."""
    if address is not None:
        return address.is_loopback or address.is_unspecified
    return name == "localhost" or name.endswith(".localhost")
