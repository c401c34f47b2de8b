"""Finding links: a filter, a sort and keyset pages, for GET /links and whatever else selects
links by the collection's filters (bulk operations, export).

The cursor carries the sort, the last link's sort key and its id: the next page continues
right after that position, an index range scan whatever the sort (storage/link_filters.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ..storage import link_queries, user_queries
from ..storage.link_filters import DEFAULT_SORT, SORTS, LinkFilter, sort_key_of
from ..storage.records import LinkRecord, UserRecord
from .actors import can_see_owner
from .errors import InvalidParameter
from .pagination import Page

_PREFIX = "k1"
_NOBODY = -1  # an owner the actor may not see: nothing matches


def encode_position(sort: str, key: Any, last_id: int) -> str:
    """An opaque cursor for (sort, key, id)."""
    if isinstance(key, datetime):
        key = ["t", key.isoformat()]
    text = json.dumps([_PREFIX, sort, key, last_id], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_position(cursor: str, sort: str) -> tuple[Any, int]:
    """(key, id) of a cursor issued for ``sort``; 400 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        prefix, issued_for, key, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if prefix != _PREFIX or issued_for != sort or type(last_id) is not int:
            raise ValueError("not ours")
        if not 1 <= last_id <= 2**63 - 1:
            raise ValueError("not an id")
        if isinstance(key, list):
            if len(key) != 2 or key[0] != "t":
                raise ValueError("not a time")
            key = datetime.fromisoformat(key[1])
            if key.tzinfo is None:
                raise ValueError("not a UTC time")
        elif type(key) is int:
            if not -(2**63) <= key <= 2**63 - 1:
                raise ValueError("not a 64-bit count")
        elif not isinstance(key, str):
            raise ValueError("not a key")
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidParameter(
            "The cursor is not one this server issued for this sort; follow the 'next' link "
            "instead.",
            errors={"cursor": ["Not a valid cursor."]},
        ) from None
    return key, last_id


def owner_id_for(connection: Connection, actor: UserRecord, owner: str | None) -> int | None:
    """Whose links a filter reaches: the actor's own (an admin's: everyone's, or ``owner``'s);
    ``_NOBODY`` when ``owner`` is not a user the actor may see."""
    if owner is None:
        return None if actor.is_admin else actor.id
    record = user_queries.find_by_name(connection, owner)
    if record is None or not can_see_owner(actor, record.id):
        return _NOBODY
    return record.id


def find_page(
    connection: Connection,
    actor: UserRecord,
    link_filter: LinkFilter,
    *,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> Page[LinkRecord]:
    """One page of the links ``actor`` may see that match ``link_filter``, in ``sort`` order
    (storage/link_filters.SORTS), after ``cursor``."""
    if sort not in SORTS:
        raise ValueError(f"no sort {sort!r}")
    after = None if cursor is None else decode_position(cursor, sort)
    owner_id = owner_id_for(connection, actor, link_filter.owner)
    if owner_id == _NOBODY:
        return Page([], None)
    rows = link_queries.find_page(
        connection, link_filter, owner_id=owner_id, sort=sort, after=after, limit=limit + 1, now=now
    )
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        return Page(rows, encode_position(sort, sort_key_of(last, sort), last.id))
    return Page(rows, None)


def each_link(
    connection: Connection,
    actor: UserRecord,
    link_filter: LinkFilter,
    *,
    sort: str = DEFAULT_SORT,
    batch: int = 500,
    now: datetime | None = None,
) -> Iterator[LinkRecord]:
    """Every matching link, page by page (``batch`` at a time in memory): for exports and
    bulk selections."""
    cursor = None
    while True:
        page = find_page(
            connection, actor, link_filter, sort=sort, cursor=cursor, limit=batch, now=now
        )
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
