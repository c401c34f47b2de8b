"""Query forwarding and UTM fields: the target a visitor is sent to, built from raw query text.

Nothing is decoded and encoded again: a query is split on ``&`` into its pairs as sent, and a
pair is only ever kept or dropped, so ``%20`` stays ``%20``, ``+`` stays ``+``, ``a=`` and a bare
``a`` stay as they are. Names are compared decoded (``utm%5Fsource`` is ``utm_source``).

- UTM fields are appended to the link's target when set, unless the target already has a
  parameter of that name: the target the owner wrote wins. The suffix is worked out when the
  link is read (its cache holds the result), so it costs a redirect nothing.
- ``forward_query``: the visitor's pairs are appended after the target's (and the UTM
  fields'), in the order sent, repeated names kept; a pair whose name the target (or a UTM
  field) already has is dropped: the link's own parameters win. Bytes that cannot appear in a
  URI (non-ASCII, spaces, quotes) are percent-encoded; nothing else is touched.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
UTM_MAX_LENGTH = 255
# Unreserved characters stay; everything else in a UTM value is percent-encoded (UTF-8).
_UTM_SAFE = "-._~"
# Characters a query keeps as they are (RFC 3986 query characters, and '%' of an escape).
_QUERY_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)


def _pairs(query: str) -> list[str]:
    return [pair for pair in query.split("&") if pair]


def _name(pair: str) -> str:
    return unquote_plus(pair.partition("=")[0])


def _split(target: str) -> tuple[str, str, str]:
    """(everything before the query, the query, ``#fragment`` or "")."""
    before_fragment, hash_sign, fragment = target.partition("#")
    base, _, query = before_fragment.partition("?")
    return base, query, hash_sign + fragment


def _join(target: str, base: str, query: str, added: list[str], fragment: str) -> str:
    """The target with ``added`` pairs after its own query, which is kept exactly as written."""
    if not added:
        return target
    joint = "&" if query and not query.endswith("&") else ""
    return f"{base}?{query}{joint}{'&'.join(added)}{fragment}"


def with_utm(target: str, utm: dict[str, str | None]) -> str:
    """``target`` with the set UTM fields appended, except those it already has."""
    added = [(name, value) for name, value in utm.items() if value is not None]
    if not added:
        return target
    base, query, fragment = _split(target)
    present = {_name(pair) for pair in _pairs(query)}
    pairs = [
        f"{name}={quote(value, safe=_UTM_SAFE)}" for name, value in added if name not in present
    ]
    return _join(target, base, query, pairs, fragment)


def clean_query(raw: bytes) -> str:
    """The query as sent (bytes, as WSGI gives it), with every byte that may not appear in a
    URI percent-encoded; everything else, escapes included, as it was."""
    if all(byte in _QUERY_SAFE for byte in raw):
        return raw.decode("ascii")
    return "".join(chr(byte) if byte in _QUERY_SAFE else f"%{byte:02X}" for byte in raw)


def forward(target: str, visitor_query: str) -> str:
    """``target`` (already with its UTM fields) with the visitor's query merged in."""
    visitor = _pairs(visitor_query)
    if not visitor:
        return target
    base, query, fragment = _split(target)
    own = {_name(pair) for pair in _pairs(query)}
    return _join(
        target, base, query, [pair for pair in visitor if _name(pair) not in own], fragment
    )
