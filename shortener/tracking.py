"""Whether a redirect records its visit: the privacy settings, worked out once per app.

A request is redirected either way; its visit is not recorded when

- ``SHORTENER_HONOR_DO_NOT_TRACK`` is true (the default) and it sends ``DNT: 1`` or
  ``Sec-GPC: 1`` (Global Privacy Control), or
- its client address is in ``SHORTENER_TRACKING_DISABLED_FOR`` (CIDR networks): the address
  the rate limits and the visits use, i.e. ``REMOTE_ADDR`` as ProxyFix rewrote it from
  ``X-Forwarded-For`` when ``SHORTENER_TRUSTED_PROXIES`` is set.

Cheap on the hot path: two header lookups; the networks are parsed at start-up and each
address's answer is kept (an LRU cache), so only the first request of an address compares it
with the networks. Without networks the address is not even looked at.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from flask import Flask

from .settings import Settings

EXTENSION = "shortener.tracking"
ADDRESSES_KEPT = 65_536
_OPTED_OUT = ("HTTP_DNT", "HTTP_SEC_GPC")


class TrackingPolicy:
    """``records(environ)``: whether the visit of this WSGI request is recorded."""

    def __init__(
        self, *, untracked: Iterable[ipaddress._BaseNetwork] = (), honor_do_not_track: bool = True
    ) -> None:
        self.untracked = tuple(untracked)
        self.honor_do_not_track = honor_do_not_track
        self.is_untracked = functools.lru_cache(maxsize=ADDRESSES_KEPT)(self._in_networks)

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackingPolicy:
        return cls(
            untracked=settings.tracking_disabled_for,
            honor_do_not_track=settings.honor_do_not_track,
        )

    def records(self, environ: dict[str, Any]) -> bool:
        if self.honor_do_not_track:
            for header in _OPTED_OUT:
                value = environ.get(header)
                if value is not None and value.strip() == "1":
                    return False
        if self.untracked and self.is_untracked(environ.get("REMOTE_ADDR")):
            return False
        return True

    def _in_networks(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False  # no usable address: nothing to match (the visit stores none either)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's IPv4 client
        return any(ip in network for network in self.untracked)


def policy(app: Flask) -> TrackingPolicy:
    """The app's policy, made from its settings on first use."""
    found = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = TrackingPolicy.from_settings(
            app.extensions["shortener.settings"]
        )
    return found
