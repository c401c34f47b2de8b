"""The history of links: one revision per change (created, each PUT/PATCH, deleted), written
by a link-events subscriber in the change's own transaction, so a change and its revision
commit together or not at all.

A link's owner (and admins) read its revisions while it exists; a deleted link's revisions
stay, and administrators read them by slug, across every link that ever had that slug.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from ..storage import Database
from ..storage import history_queries as queries
from ..storage.history_queries import RevisionRecord
from ..storage.records import UserRecord
from .errors import Forbidden
from .link_events import LinkEvent
from .links import visible_link
from .pagination import Page, decode_cursor, paginate


class HistoryService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def on_link_events(self, connection: Connection, events: Sequence[LinkEvent]) -> None:
        """The link-events subscriber: one revision per event, in one INSERT."""
        queries.insert_revisions(connection, [_revision(event) for event in events])

    def of_link(
        self, actor: UserRecord, slug: str, *, cursor: str | None, limit: int
    ) -> Page[RevisionRecord]:
        """GET /links/<slug>/history: the revisions of the link now at ``slug`` (a slug
        deleted and made again starts a new history), newest first. Another user's link is
        404, as for the link itself."""
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            link = visible_link(connection, actor, slug)
            rows = queries.page(connection, link_id=link.id, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda revision: revision.id)

    def of_all(
        self, actor: UserRecord, *, slug: str | None, cursor: str | None, limit: int
    ) -> Page[RevisionRecord]:
        """GET /history (administrators): every revision, or those of every link that had
        ``slug``, deleted ones included, newest first."""
        self.require_admin(actor)
        before_id = decode_cursor(cursor)
        with self.database.read() as connection:
            rows = queries.page(connection, slug=slug, before_id=before_id, limit=limit + 1)
        return paginate(rows, limit, lambda revision: revision.id)

    @staticmethod
    def require_admin(actor: UserRecord) -> None:
        if not actor.is_admin:
            raise Forbidden("Only administrators can read the history of every link.")


def _revision(event: LinkEvent) -> dict[str, Any]:
    acting = event.acting
    return {
        "link_id": event.link_id,
        "slug": event.slug,
        "owner_id": event.owner_id,
        "event": event.kind,
        "at": event.at,
        "by_id": None if acting.is_operator else acting.user.id,
        "by_username": None if acting.is_operator else acting.user.username,
        "via": acting.channel,
        "token_id": acting.token_id,
        "changes": event.changes,
    }
