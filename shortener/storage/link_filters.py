"""Finding links: the collection's filters and sorts as SQL, in one place.

``LinkFilter`` is what GET /links, the bulk operations' ``{"filter": ...}`` selection and the
export select links by (schemas/link_filters.py loads it); ``filtered`` applies it to any
select of ``links``; ``sorted_page`` orders it by one of ``SORTS`` and continues after a
keyset position (sort key, id), an index range scan on every sort (migration 0014).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles

from .tables import UTCDateTime, link_tags, links, tags

# name -> the column or expression it orders by (each has an index, with and without owner).
_SORT_KEYS: dict[str, Any] = {
    "created": links.c.created_at,
    "visits": links.c.visit_count,
    "slug": links.c.slug,
    "title": links.c.sort_title,
}
SORTS = tuple(f"{sign}{name}" for name in _SORT_KEYS for sign in ("", "-"))
DEFAULT_SORT = "-created"


@dataclass(frozen=True, slots=True)
class LinkFilter:
    """Links matching every condition given (None or empty: no condition).

    ``tag_keys``/``exclude_tag_keys`` are case-folded tag names (services/tags.tag_key): every
    one of ``tag_keys`` must be on the link, none of ``exclude_tag_keys``. ``q``: in the slug,
    title or target, case-insensitively. ``target``: exactly this normalised target.
    ``created_since`` inclusive, ``created_until`` exclusive. ``status``: the lifetime status
    (services/lifetime.py) at the time given to ``filtered``. ``owner``: a user name, which
    the service resolves (an admin's filter; others only ever see their own links).
    """

    tag_keys: tuple[str, ...] = ()
    exclude_tag_keys: tuple[str, ...] = ()
    q: str | None = None
    target: str | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None
    status: str | None = None
    owner: str | None = None


NO_FILTER = LinkFilter()


def _has_tag(key: str) -> ColumnElement[bool]:
    return exists().where(
        link_tags.c.link_id == links.c.id,
        link_tags.c.tag_id == tags.c.id,
        tags.c.key == key,
        tags.c.owner_id == links.c.owner_id,
    )


def filtered(
    query: Select,
    link_filter: LinkFilter,
    *,
    owner_id: int | None,
    now: datetime | None = None,
    status_is: Callable[[str, datetime | None], ColumnElement[bool]] | None = None,
) -> Select:
    """``query`` (a select of ``links``) with the filter's conditions and ``owner_id``'s
    (None: every owner's links). ``status_is`` is link_queries' lifetime condition."""
    conditions: list[ColumnElement[bool]] = []
    if owner_id is not None:
        conditions.append(links.c.owner_id == owner_id)
    conditions.extend(_has_tag(key) for key in dict.fromkeys(link_filter.tag_keys))
    conditions.extend(~_has_tag(key) for key in dict.fromkeys(link_filter.exclude_tag_keys))
    if link_filter.q:
        conditions.append(_Search(link_filter.q))
    if link_filter.target is not None:
        conditions.append(links.c.target == link_filter.target)
    if link_filter.created_since is not None:
        conditions.append(links.c.created_at >= link_filter.created_since)
    if link_filter.created_until is not None:
        conditions.append(links.c.created_at < link_filter.created_until)
    if link_filter.status is not None:
        if status_is is None:
            raise ValueError("a status filter needs the lifetime condition")
        conditions.append(status_is(link_filter.status, now))
    return query.where(*conditions) if conditions else query


# What q searches, on PostgreSQL: the expression of the trigram index ix_links_search (migration
# 0017); chr(1) keeps a match from spanning two fields.
_SEPARATOR = literal_column("chr(1)")
SEARCH_TEXT = func.lower(
    links.c.slug
    + _SEPARATOR
    + func.coalesce(links.c.title, literal_column("''"))
    + _SEPARATOR
    + links.c.target
)


class _Search(ColumnElement[bool]):
    """``q`` in the slug, title or target, case-insensitively, as each database does it fast:
    PostgreSQL through the trigram index of SEARCH_TEXT; SQLite through its FTS5 trigram table
    (a text of one or two characters: in one pass over the table, case-insensitive for ASCII
    letters as its LIKE is). Either gives the ids, which the page's own index walk picks from."""

    inherit_cache = False  # the statement is compiled per search
    type = Boolean()

    def __init__(self, q: str) -> None:
        self.q = q
        self.pattern = "%" + _LIKE_SPECIAL.sub(r"\\\g<0>", q) + "%"


_LIKE_SPECIAL = re.compile(r"[\\%_]")


# SQLite: the FTS5 trigram table of migration 0017 (rowid: the link's id).
_LINKS_SEARCH = table("links_search", column("rowid"), column("body"))
_MATCH_MINIMUM = 3  # trigrams: a shorter text is looked for in every link instead


@compiles(_Search, "sqlite")
def _search_by_fts_trigrams(element: _Search, compiler, **kw) -> str:
    if len(element.q) < _MATCH_MINIMUM:
        return _search_in_one_pass(element, compiler, **kw)
    phrase = '"' + element.q.replace('"', '""') + '"'
    matching = select(_LINKS_SEARCH.c.rowid).where(
        literal_column("links_search").op("MATCH")(phrase)
    )
    return compiler.process(links.c.id.in_(matching), **kw)


@compiles(_Search)
def _search_in_one_pass(element: _Search, compiler, **kw) -> str:
    searched = links.alias("searched")
    matching = select(searched.c.id).where(
        or_(
            *(
                column.like(element.pattern, escape="\\")
                for column in (searched.c.slug, searched.c.title, searched.c.target)
            )
        )
    )
    return compiler.process(links.c.id.in_(matching), **kw)


@compiles(_Search, "postgresql")
def _search_by_trigrams(element: _Search, compiler, **kw) -> str:
    pattern = func.lower(literal(element.pattern))
    return compiler.process(SEARCH_TEXT.like(pattern, escape="\\"), **kw)


class RowMatches(ColumnElement[bool]):
    """``q`` in this link's slug, title or target (per row: no index), as ``_Search`` would
    say: for a search's first look at the links nearest its page (storage/link_queries.py)."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, q: str) -> None:
        self.pattern = _Search(q).pattern


@compiles(RowMatches)
def _row_matches(element: RowMatches, compiler, **kw) -> str:
    columns = (links.c.slug, links.c.title, links.c.target)
    return compiler.process(or_(*(c.like(element.pattern, escape="\\") for c in columns)), **kw)


@compiles(RowMatches, "postgresql")
def _row_matches_text(element: RowMatches, compiler, **kw) -> str:
    pattern = func.lower(literal(element.pattern))
    return compiler.process(SEARCH_TEXT.like(pattern, escape="\\"), **kw)


def matching_ids(link_filter: LinkFilter, *, owner_id: int | None) -> Select:
    """A select of the ids of the links matching ``link_filter`` (for ``IN``): statistics of
    a tag's links. No lifetime ``status`` here (it needs a time)."""
    return filtered(select(links.c.id), link_filter, owner_id=owner_id)


def sort_key_of(record: Any, sort: str) -> Any:
    """The value ``sort`` orders ``record`` (a LinkRecord) by: the cursor's key."""
    name = sort.lstrip("-")
    if name == "created":
        return record.created_at
    if name == "visits":
        return record.visit_count
    if name == "slug":
        return record.slug
    return record.title or ""


def sorted_page(query: Select, sort: str, *, after: tuple[Any, int] | None, limit: int) -> Select:
    """``query`` in ``sort`` order (ties by id, the same way), from just after ``after``
    (the last row's sort key and id), ``limit`` rows. Slugs are unique: they need no id."""
    descending = sort.startswith("-")
    key = _SORT_KEYS[sort.lstrip("-")]
    order = (key,) if key is links.c.slug else (key, links.c.id)
    if after is not None:
        value, last_id = after
        bound = literal(value, UTCDateTime()) if key is links.c.created_at else literal(value)
        if key is links.c.slug:
            position, last = key, bound
        else:
            position, last = tuple_(key, links.c.id), tuple_(bound, literal(last_id))
        query = query.where(position < last if descending else position > last)
    return query.order_by(
        *(column.desc() if descending else column.asc() for column in order)
    ).limit(limit)
