"""Queries on tags: each owner's tags, the tags of each link, renaming and removing them.

A tag is a row of ``tags`` per owner and case-folded ``key`` (services/tags.py folds it); its
``name`` is the spelling first given. A tag no link carries any more is left in place but
never shown (listings join on ``link_tags``); given again, it takes the new spelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Connection,
    String,
    TypeDecorator,
    and_,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from .tables import link_tags, links, tags, users

# Tag names never hold a comma (services/tags.py), so a link's tags travel as one string.
# Literals, not bound values: the read of one link is prepared once (storage/typed_reads.py).
_SEPARATOR = literal_column("','")
_EMPTY = literal_column("''")


class TagNames(TypeDecorator):
    """A link's tag names, aggregated in order into one string, read back as a tuple."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: str | None, dialect) -> tuple[str, ...]:
        return tuple(value.split(",")) if value else ()


def _names_in_order():
    ordered = (
        select(tags.c.name)
        .join_from(link_tags, tags, link_tags.c.tag_id == tags.c.id)
        .where(link_tags.c.link_id == links.c.id)
        .order_by(link_tags.c.position)
        .correlate(links)
        .subquery()
    )
    return (
        select(func.coalesce(func.aggregate_strings(ordered.c.name, _SEPARATOR), _EMPTY))
        .correlate(links)
        .scalar_subquery()
    )


def link_tag_names_column():
    """``tags`` for a select of ``links``: a correlated read of the link's tags, in order
    (one primary-key range of link_tags per link shown)."""
    return type_coerce(_names_in_order(), TagNames()).label("tags")


@dataclass(frozen=True, slots=True)
class TagRecord:
    id: int
    owner_id: int
    owner_username: str
    name: str
    key: str
    link_count: int
    other_owner: bool = False  # shown to an admin who is not its owner (services/tags.py)


def _insert_ignoring_duplicates(connection: Connection):
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(tags).on_conflict_do_nothing(index_elements=["owner_id", "key"])
    if dialect == "sqlite":
        return sqlite.insert(tags).on_conflict_do_nothing(index_elements=["owner_id", "key"])
    raise NotImplementedError(dialect)


def tag_ids(
    connection: Connection, owner_id: int, names: Sequence[tuple[str, str]], now: datetime
) -> list[tuple[int, str]]:
    """The ids and names (as stored) of the owner's tags ``(name, key)``, in order, made where
    missing (race-safe: a concurrent insert of the same key is taken, not duplicated). A tag
    that no link carries takes the spelling given now."""
    if not names:
        return []
    keys = [key for _, key in names]
    connection.execute(
        _insert_ignoring_duplicates(connection),
        [{"owner_id": owner_id, "name": n, "key": k, "created_at": now} for n, k in names],
    )
    in_use = exists().where(link_tags.c.tag_id == tags.c.id)
    rows = connection.execute(
        select(tags.c.id, tags.c.key, tags.c.name, in_use).where(
            tags.c.owner_id == owner_id, tags.c.key.in_(keys)
        )
    ).all()
    found = {row.key: (row.id, row.name) for row in rows}
    spelled = dict((key, name) for name, key in reversed(names))  # the first given wins
    for row in rows:
        if not row[3] and row.name != spelled[row.key]:
            connection.execute(
                update(tags).where(tags.c.id == row.id).values(name=spelled[row.key])
            )
            found[row.key] = (row.id, spelled[row.key])
    return [found[key] for key in keys]


def set_link_tags(
    connection: Connection,
    link_id: int,
    tag_ids_in_order: Sequence[int],
    *,
    replacing: bool = True,
) -> None:
    """The link carries exactly these tags, in this order (``replacing``: the ones it carried
    are taken off first; a new link has none to take off)."""
    if replacing:
        connection.execute(delete(link_tags).where(link_tags.c.link_id == link_id))
    if tag_ids_in_order:
        connection.execute(
            insert(link_tags),
            [
                {"link_id": link_id, "tag_id": tag_id, "position": position}
                for position, tag_id in enumerate(tag_ids_in_order)
            ],
        )


def names_of(connection: Connection, link_id: int) -> tuple[str, ...]:
    """The link's tags as named, in order."""
    query = (
        select(tags.c.name)
        .join_from(link_tags, tags, link_tags.c.tag_id == tags.c.id)
        .where(link_tags.c.link_id == link_id)
        .order_by(link_tags.c.position)
    )
    return tuple(connection.execute(query).scalars())


def all_exist(connection: Connection, keys: Sequence[str], owner_id: int | None) -> bool:
    """Whether each of ``keys`` is a tag (of ``owner_id``; None: of anyone): when one is not,
    no link can carry them all, and a filter by them need not look at any link."""
    wanted = set(keys)
    query = select(func.count(func.distinct(tags.c.key))).where(tags.c.key.in_(wanted))
    if owner_id is not None:
        query = query.where(tags.c.owner_id == owner_id)
    return connection.execute(query).scalar_one() == len(wanted)


_LINK_COUNT = func.count(link_tags.c.link_id)
_SELECT_TAGS = (
    select(
        tags.c.id,
        tags.c.owner_id,
        users.c.username.label("owner_username"),
        tags.c.name,
        tags.c.key,
        _LINK_COUNT.label("link_count"),
    )
    .join_from(tags, link_tags, link_tags.c.tag_id == tags.c.id)
    .join(users, users.c.id == tags.c.owner_id)
    .group_by(tags.c.id, tags.c.owner_id, users.c.username, tags.c.name, tags.c.key)
)


def page(
    connection: Connection, *, owner_id: int | None, after_key: tuple[str, int] | None, limit: int
) -> list[TagRecord]:
    """Tags carried by at least one link, by key then id (keyset on both), with their counts."""
    query = _SELECT_TAGS
    if owner_id is not None:
        query = query.where(tags.c.owner_id == owner_id)
    if after_key is not None:
        key, tag_id = after_key
        query = query.where((tags.c.key > key) | and_(tags.c.key == key, tags.c.id > tag_id))
    query = query.order_by(tags.c.key, tags.c.id).limit(limit)
    return [TagRecord(**row._mapping) for row in connection.execute(query)]


def find(connection: Connection, owner_id: int, key: str) -> TagRecord | None:
    """The owner's tag by key, if a link carries it."""
    row = connection.execute(
        _SELECT_TAGS.where(tags.c.owner_id == owner_id, tags.c.key == key)
    ).first()
    return None if row is None else TagRecord(**row._mapping)


def _touch_links_of(connection: Connection, tag_id: int, now: datetime) -> None:
    """The links carrying the tag change representation: a new version (and ETag)."""
    connection.execute(
        update(links)
        .where(links.c.id.in_(select(link_tags.c.link_id).where(link_tags.c.tag_id == tag_id)))
        .values(version=links.c.version + 1, updated_at=now)
    )


def rename(connection: Connection, tag: TagRecord, name: str, key: str, now: datetime) -> None:
    """Renames the tag; onto another of the owner's tags, merges into it (a link that had
    both keeps one, at the earlier position)."""
    _touch_links_of(connection, tag.id, now)
    other = connection.execute(
        select(tags.c.id).where(
            tags.c.owner_id == tag.owner_id, tags.c.key == key, tags.c.id != tag.id
        )
    ).scalar()
    if other is None:
        connection.execute(update(tags).where(tags.c.id == tag.id).values(name=name, key=key))
        return
    # Links with both: keep the earlier position on the surviving tag's row.
    both = select(link_tags.c.link_id).where(link_tags.c.tag_id == other)
    theirs = link_tags.alias("theirs")
    connection.execute(
        update(link_tags)
        .where(
            link_tags.c.tag_id == other,
            link_tags.c.link_id.in_(
                select(theirs.c.link_id).where(
                    theirs.c.tag_id == tag.id, theirs.c.position < link_tags.c.position
                )
            ),
        )
        .values(
            position=select(theirs.c.position)
            .where(theirs.c.tag_id == tag.id, theirs.c.link_id == link_tags.c.link_id)
            .scalar_subquery()
        )
    )
    connection.execute(
        delete(link_tags).where(link_tags.c.tag_id == tag.id, link_tags.c.link_id.in_(both))
    )
    connection.execute(update(link_tags).where(link_tags.c.tag_id == tag.id).values(tag_id=other))
    connection.execute(delete(tags).where(tags.c.id == tag.id))
    connection.execute(update(tags).where(tags.c.id == other).values(name=name))


def remove(connection: Connection, tag: TagRecord, now: datetime) -> None:
    """Takes the tag off every link and forgets it."""
    _touch_links_of(connection, tag.id, now)
    connection.execute(delete(link_tags).where(link_tags.c.tag_id == tag.id))
    connection.execute(delete(tags).where(tags.c.id == tag.id))
