"""Keyset pagination: opaque cursors that carry the last id seen."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import InvalidParameter

Item = TypeVar("Item")

_CURSOR_PREFIX = "v1:"
_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue before, or None for the first page; a cursor we did not issue is 400."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not (number.isascii() and number.isdigit()):
        raise _bad_cursor()
    last_id = int(number)
    # Ids are 64-bit: a larger one was forged, and SQLite could not even bind it.
    if not 1 <= last_id <= _MAX_ID or encode_cursor(last_id) != cursor:
        raise _bad_cursor()
    return last_id


def paginate(rows: list[Item], limit: int, id_of) -> Page[Item]:
    """Rows were fetched with ``limit + 1``: the extra one only says a next page exists."""
    if len(rows) > limit:
        items = rows[:limit]
        return Page(items, encode_cursor(id_of(items[-1])))
    return Page(rows, None)


def _bad_cursor() -> InvalidParameter:
    return InvalidParameter(
        "The cursor is not one this server issued; follow the 'next' link instead.",
        errors={"cursor": ["Not a valid cursor."]},
    )
