"""Tags: labels an owner puts on links, to find them (GET /links?tag=) and act on them together.

A tag is 1-64 letters, digits, ``-``, ``_``, ``.``, ``:`` and spaces; a link carries up to 50.
Tags compare case-insensitively (``tag_key``: Unicode case folding), and keep the spelling
first given: tagging a link "news" when "News" exists gives it "News". A rename onto another
of the owner's tags merges them; deleting a tag takes it off every link. A link's tags are
never read on the redirect.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection

from ..storage import Database, link_queries, user_queries
from ..storage import tag_queries as queries
from ..storage.records import LinkRecord, UserRecord
from ..storage.tag_queries import TagRecord
from .actors import can_see_owner, utcnow
from .errors import InvalidParameter, NotFound
from .link_events import LinkEvents, current_acting, updated
from .pagination import Page

MAX_TAGS_PER_LINK = 50
TAG_MAX_LENGTH = 64
TAG_RULE = (
    f"Must be 1 to {TAG_MAX_LENGTH} characters: letters, digits, spaces, '-', '_', '.' or ':'."
)
# Letters and digits of any script (str.isalnum, after NFC), plus these.
_PUNCTUATION = frozenset("-_.: ")
# The rule as the OpenAPI document states it: every ASCII character but those allowed is
# excluded; beyond ASCII only letters and digits are (which a pattern without \p cannot say).
TAG_PATTERN = r"^[^\x00-\x1f!-,/;-@\[-\^`{-\x7f]{1,64}$"
_ASCII_RULE = re.compile(r"[A-Za-z0-9\-_.: ]{1,64}")


def tag_problem(name: object) -> str | None:
    """Why ``name`` is not a tag, or None if it is one."""
    if not isinstance(name, str):
        return "Must be a string."
    if _ASCII_RULE.fullmatch(name):
        return None
    if not 1 <= len(name) <= TAG_MAX_LENGTH:
        return TAG_RULE
    if all(char in _PUNCTUATION or char.isalnum() for char in name):
        return None
    return TAG_RULE


def normal_form(name: str) -> str:
    """The tag as stored: NFC, so "é" typed as e + accent is the letter "é"."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def tag_key(name: str) -> str:
    """What tags are compared by: case-folded ("News", "NEWS" and "news" are one tag)."""
    return normal_form(name).casefold()


def distinct(names: Iterable[str]) -> list[str]:
    """The names in order, each tag once (the first spelling given)."""
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(tag_key(name), normal_form(name))
    return list(seen.values())


def set_tags_on(
    connection: Connection,
    link_id: int,
    owner_id: int,
    names: Sequence[str] | None,
    now: datetime,
    *,
    current: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """Inside a link's write: the link carries exactly ``names`` (checked by the schema; None:
    none), in order. Returns them as stored (the owner's existing spellings). ``current``: the
    tags the link carries now, when known (``()`` for a new link): the same tags again touch
    no table, and a link that carried none has none to take off."""
    names = distinct(names or ())
    if current is not None and [tag_key(name) for name in names] == [
        tag_key(name) for name in current
    ]:
        return tuple(current)
    found = queries.tag_ids(connection, owner_id, [(name, tag_key(name)) for name in names], now)
    queries.set_link_tags(
        connection, link_id, [tag_id for tag_id, _ in found], replacing=current != ()
    )
    return tuple(name for _, name in found)


class TagService:
    def __init__(
        self,
        database: Database,
        *,
        link_events: LinkEvents | None = None,
        link_fields: Sequence[str] = (),
    ) -> None:
        self.database = database
        # A rename or a deletion changes the tags of every link carrying the tag: each is a
        # link.updated event (history, webhooks), with ``link_fields`` (links.EVENT_FIELDS).
        self.link_events = link_events if link_events is not None else LinkEvents()
        self.link_fields = tuple(link_fields)

    def list(
        self, actor: UserRecord, *, owner: str | None, cursor: str | None, limit: int
    ) -> Page[TagRecord]:
        """The actor's tags carried by at least one link (an admin: everyone's, or
        ``owner``'s), by name case-insensitively, with their link counts."""
        after = _decode(cursor)
        with self.database.read() as connection:
            owner_id = self._owner_id(connection, actor, owner)
            if owner_id == -1:
                return Page([], None)
            rows = queries.page(connection, owner_id=owner_id, after_key=after, limit=limit + 1)
        rows = [_as_seen_by(actor, row) for row in rows]
        if len(rows) > limit:
            rows = rows[:limit]
            return Page(rows, _encode(rows[-1]))
        return Page(rows, None)

    def rename(
        self, actor: UserRecord, name: str, new_name: str, *, owner: str | None = None
    ) -> TagRecord:
        """Renames the actor's (or, for an admin, ``owner``'s) tag; onto an existing tag of the
        same owner, merges the two. Every link carrying it gets a new version."""
        new_name = normal_form(new_name)
        with self.database.write() as connection:
            tag = self._find(connection, actor, name, owner)
            before = link_queries.links_with_tag(connection, tag.id)
            queries.rename(connection, tag, new_name, tag_key(new_name), utcnow())
            renamed = queries.find(connection, tag.owner_id, tag_key(new_name))
            self._publish_changes(connection, actor, before)
        assert renamed is not None
        return _as_seen_by(actor, renamed)

    def delete(self, actor: UserRecord, name: str, *, owner: str | None = None) -> None:
        """Takes the tag off every link of its owner (each gets a new version)."""
        with self.database.write() as connection:
            tag = self._find(connection, actor, name, owner)
            before = link_queries.links_with_tag(connection, tag.id)
            queries.remove(connection, tag, utcnow())
            self._publish_changes(connection, actor, before)

    def _publish_changes(
        self, connection: Connection, actor: UserRecord, before: list[LinkRecord]
    ) -> None:
        """One link.updated event per link whose tags changed, in the same transaction."""
        after = link_queries.links_with_ids(connection, [link.id for link in before])
        acting = current_acting(actor)
        events = [
            updated(old, new, self.link_fields, acting)
            for old, new in zip(before, after, strict=True)
        ]
        self.link_events.publish(connection, [event for event in events if event is not None])

    def _find(
        self, connection: Connection, actor: UserRecord, name: str, owner: str | None
    ) -> TagRecord:
        owner_id = self._owner_id(connection, actor, owner)
        tag = None
        if owner_id not in (-1, None) and tag_problem(name) is None:
            tag = queries.find(connection, owner_id, tag_key(name))
        if tag is None:
            raise NotFound(f"There is no tag '{name}'.")
        return tag

    @staticmethod
    def _owner_id(connection: Connection, actor: UserRecord, owner: str | None) -> int | None:
        """Whose tags: the actor's; an admin's ``owner``'s (-1: no such user to see)."""
        if owner is None:
            return actor.id
        record = user_queries.find_by_name(connection, owner)
        if record is None or not can_see_owner(actor, record.id):
            return -1
        return record.id


def _as_seen_by(actor: UserRecord, tag: TagRecord) -> TagRecord:
    return tag if tag.owner_id == actor.id else replace(tag, other_owner=True)


def _encode(tag: TagRecord) -> str:
    from .link_finding import encode_position

    return encode_position("tags", tag.key, tag.id)


def _decode(cursor: str | None) -> tuple[str, int] | None:
    from .link_finding import decode_position

    if cursor is None:
        return None
    key, tag_id = decode_position(cursor, "tags")
    if not isinstance(key, str):
        raise InvalidParameter(
            "The cursor is not one this server issued; follow the 'next' link instead.",
            errors={"cursor": ["Not a valid cursor."]},
        )
    return key, tag_id
