"""Queries on links, including the redirect hot path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, insert, select, update

from .engine import Database
from .keyset import newest_first
from .lookups import cannot_be_stored
from .records import LinkRecord, Redirect
from .tables import links, users
from .typed_reads import TypedRead

_LINK_COLUMNS = (
    links.c.id,
    links.c.slug,
    links.c.target,
    links.c.title,
    links.c.redirect_status,
    links.c.visit_count,
    links.c.owner_id,
    users.c.username.label("owner_username"),
    links.c.created_at,
    links.c.updated_at,
    links.c.version,
)
_SELECT_LINKS = select(*_LINK_COLUMNS).join_from(links, users, links.c.owner_id == users.c.id)

# Built once at import: the hot path is one indexed lookup per redirect; the visit itself is
# written later, in a batch (see services/visits.py).
_RESOLVE = select(links.c.id, links.c.target, links.c.redirect_status).where(
    links.c.slug == bindparam("redirect_slug")
)


class Resolver:
    """Where a slug points: the redirect's one indexed read, prepared once per process."""

    def __init__(self, database: Database) -> None:
        self._read = database.prepare(_RESOLVE)

    def __call__(self, slug: str) -> Redirect | None:
        if cannot_be_stored(slug):
            return None
        row = self._read.first({"redirect_slug": slug})
        return None if row is None else Redirect(row[0], row[1], row[2])


def find_by_slug(connection: Connection, slug: str) -> LinkRecord | None:
    if cannot_be_stored(slug):
        return None
    row = connection.execute(_SELECT_LINKS.where(links.c.slug == slug)).first()
    return None if row is None else LinkRecord(**row._mapping)


class LinkBySlug:
    """``find_by_slug`` outside any transaction, prepared once (storage/typed_reads.py): for
    ``GET`` of one link, a read that needs nothing else."""

    def __init__(self, database: Database) -> None:
        self._read = TypedRead(database, _SELECT_LINKS.where(links.c.slug == bindparam("slug")))

    def __call__(self, slug: str) -> LinkRecord | None:
        if cannot_be_stored(slug):
            return None
        row = self._read.first({"slug": slug})
        return None if row is None else LinkRecord(**row)


def page(
    connection: Connection, *, owner_id: int | None, before_id: int | None, limit: int
) -> list[LinkRecord]:
    """Newest first, keyset-paginated on the primary key (page N costs what page 1 costs)."""
    query = _SELECT_LINKS
    if owner_id is not None:
        query = query.where(links.c.owner_id == owner_id)
    query = newest_first(query, links.c.id, before_id=before_id, limit=limit)
    return [LinkRecord(**row._mapping) for row in connection.execute(query)]


def insert_link(
    connection: Connection,
    *,
    slug: str,
    target: str,
    title: str | None,
    redirect_status: int,
    owner_id: int,
    now: datetime,
) -> int:
    result = connection.execute(
        insert(links)
        .values(
            slug=slug,
            target=target,
            title=title,
            redirect_status=redirect_status,
            visit_count=0,
            owner_id=owner_id,
            created_at=now,
            updated_at=now,
        )
        .returning(links.c.id)
    )
    return result.scalar_one()


def update_link(
    connection: Connection,
    link_id: int,
    changes: dict[str, Any],
    *,
    expected_version: int | None = None,
) -> bool:
    """Applies ``changes`` and raises the version in the same UPDATE. With
    ``expected_version`` only that version is changed: False if another transaction changed
    the link first (on PostgreSQL both may have read the old version)."""
    query = update(links).where(links.c.id == link_id)
    if expected_version is not None:
        query = query.where(links.c.version == expected_version)
    result = connection.execute(query.values(**changes, version=links.c.version + 1))
    return result.rowcount == 1


def delete_link(
    connection: Connection, link_id: int, *, expected_version: int | None = None
) -> bool:
    """Deletes the link (only at ``expected_version``, if given); False if nothing matched."""
    query = delete(links).where(links.c.id == link_id)
    if expected_version is not None:
        query = query.where(links.c.version == expected_version)
    return connection.execute(query).rowcount == 1


def owner_has_links(connection: Connection, owner_id: int) -> bool:
    return bool(connection.execute(select(exists().where(links.c.owner_id == owner_id))).scalar())


def delete_links_of_owner(connection: Connection, owner_id: int) -> None:
    connection.execute(delete(links).where(links.c.owner_id == owner_id))
