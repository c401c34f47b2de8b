"""Finding links: the collection's filters and sorts as SQL, in one place.

``LinkFilter`` is what GET /links, the bulk operations' ``{"filter": ...}`` selection and the
export select links by (schemas/link_filters.py loads it); ``filtered`` applies it to any
select of ``links``; ``sorted_page`` orders it by one of ``SORTS`` and continues after a
keyset position (sort key, id), an index range scan on every sort (migration 0014).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, literal, or_, select, tuple_

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
        q = link_filter.q
        conditions.append(
            or_(
                links.c.slug.icontains(q, autoescape=True),
                links.c.title.icontains(q, autoescape=True),
                links.c.target.icontains(q, autoescape=True),
            )
        )
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
