"""The visitor's country from a MaxMind-format database (SHORTENER_GEOIP_DB, ``geoip2``).

A country database (GeoLite2-Country, GeoIP2-Country) or a city one (GeoLite2-City, ...) is
read through ``geoip2``; lookups are cached per address. Used by ``country`` rule conditions
(only links with such a rule look the visitor up on the redirect) and by the visit writer,
which stores each visit's country off the hot path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import geoip2.database
import geoip2.errors
import maxminddb.errors

from .rules import parse_address

LOOKUPS_KEPT = 65_536


class GeoIPUnusable(Exception):
    """The database cannot be opened, or holds no country data."""


def open_database(path: str) -> geoip2.database.Reader:
    try:
        reader = geoip2.database.Reader(path)
    except (OSError, ValueError, maxminddb.errors.InvalidDatabaseError) as error:
        raise GeoIPUnusable(f"cannot open {path!r} as a MaxMind database: {error}") from None
    kind = reader.metadata().database_type
    if "Country" not in kind and "City" not in kind:
        reader.close()
        raise GeoIPUnusable(
            f"{path!r} is a {kind!r} database; a country or city one is needed "
            "(GeoLite2-Country, GeoLite2-City)."
        )
    return reader


def country_lookup(path: str | None) -> Callable[[str | None], str | None] | None:
    """A function from a client address to its ISO 3166-1 alpha-2 country (or None), or None
    when there is no database."""
    if path is None:
        return None
    reader = open_database(path)
    city = "City" in reader.metadata().database_type
    find = reader.city if city else reader.country

    @functools.lru_cache(maxsize=LOOKUPS_KEPT)
    def country_of(remote_addr: str | None) -> str | None:
        address = parse_address(remote_addr)
        if address is None:
            return None
        try:
            code = find(str(address)).country.iso_code
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None
        return code.upper()[:2] if code else None

    country_of.reader = reader  # type: ignore[attr-defined]
    return country_of
