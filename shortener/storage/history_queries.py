"""Queries on link revisions (the history of links): written with the change, read newest
first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from .keyset import newest_first
from .tables import link_revisions


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    id: int
    link_id: int
    slug: str
    owner_id: int
    event: str  # link.created | link.updated | link.deleted
    at: datetime
    by_id: int | None  # None: the command line's operator
    by_username: str | None
    via: str  # password | token | cli
    token_id: int | None
    changes: dict[str, list[Any]]  # {field: [old, new]}


# Built once: one INSERT (several rows for a batch) per change, in the change's transaction.
_INSERT = insert(link_revisions)
_SELECT = select(
    link_revisions.c.id,
    link_revisions.c.link_id,
    link_revisions.c.slug,
    link_revisions.c.owner_id,
    link_revisions.c.event,
    link_revisions.c.at,
    link_revisions.c.by_id,
    link_revisions.c.by_username,
    link_revisions.c.via,
    link_revisions.c.token_id,
    link_revisions.c.changes,
)


def insert_revisions(connection: Connection, revisions: Sequence[dict[str, Any]]) -> None:
    """Stores revisions given as column values, ``changes`` as a dict (JSON-ready)."""
    connection.execute(
        _INSERT,
        [
            {**revision, "changes": json.dumps(revision["changes"], separators=(",", ":"))}
            for revision in revisions
        ],
    )


def page(
    connection: Connection,
    *,
    link_id: int | None = None,
    slug: str | None = None,
    before_id: int | None,
    limit: int,
) -> list[RevisionRecord]:
    """Newest first, keyset-paginated: one link's revisions, or a slug's across every link
    that had it, or (neither) all of them."""
    query = _SELECT
    if link_id is not None:
        query = query.where(link_revisions.c.link_id == link_id)
    if slug is not None:
        query = query.where(link_revisions.c.slug == slug)
    query = newest_first(query, link_revisions.c.id, before_id=before_id, limit=limit)
    return [
        RevisionRecord(**{**row._mapping, "changes": json.loads(row.changes)})
        for row in connection.execute(query)
    ]
