"""What a visit says about its visitor: browser, OS, bot or not, and an anonymized address."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

import ua_parser

REFERRER_MAX_LENGTH = 1024
USER_AGENT_MAX_LENGTH = 512
FAMILY_MAX_LENGTH = 64
IPV4_PREFIX = 24
IPV6_PREFIX = 48


@functools.lru_cache(maxsize=8192)
def describe_user_agent(user_agent: str) -> tuple[str | None, str | None, bool]:
    """(browser family, OS family, is a bot); ua-parser marks crawlers, link previewers and
    uptime monitors as the device family "Spider"."""
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family[:FAMILY_MAX_LENGTH] if result.user_agent else None
    os_family = result.os.family[:FAMILY_MAX_LENGTH] if result.os else None
    is_bot = result.device is not None and result.device.family == "Spider"
    return browser, os_family, is_bot


def clean_header(value: str | None, max_length: int) -> str | None:
    """A header value fit to store: NUL removed (PostgreSQL refuses it), a lone surrogate
    (no driver can encode it; one would fail its whole batch on every retry) replaced by "?",
    cut to length."""
    if not value:
        return None
    value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return value[:max_length] or None


@functools.lru_cache(maxsize=8192)
def referrer_host(referrer: str | None) -> str | None:
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return host[:255] if host else None


@functools.lru_cache(maxsize=65536)
def client_address(remote_addr: str | None, *, anonymize: bool) -> str | None:
    """The address as stored: by default only its network (IPv4 /24, IPv6 /48)."""
    if not remote_addr:
        return None
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if not anonymize:
        return str(address)
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
