"""/api/v1.0/links/<slug>/history and /api/v1.0/history: revisions of links, newest first."""

from __future__ import annotations

from flask_restful import Resource

from ..auth import current_user
from ..schemas.history import HistoryQuery, RevisionSchema
from ..schemas.pages import PageQuery, page_of
from ..services.tokens import LINKS_READ, USERS_ADMIN
from .http import services
from .operations import operation

HISTORY_PAGE = page_of("history", RevisionSchema)


def _admins_only(**_) -> None:
    services().history.require_admin(current_user())


class LinkHistory(Resource):
    @operation(
        "listLinkHistory",
        "A link's changes, newest first: who made each, how, and what changed",
        scope=LINKS_READ,
        query=PageQuery,
        response=HISTORY_PAGE,
        errors=(404,),
        tags=("history",),
        etag=True,
    )
    def get(self, slug, query):
        return services().history.of_link(
            current_user(), slug, cursor=query["cursor"], limit=query["limit"]
        )


class AllHistory(Resource):
    @operation(
        "listHistory",
        "Changes of every link, deleted ones included, newest first (admins; ?slug= for "
        "every link that had that slug)",
        scope=USERS_ADMIN,
        query=HistoryQuery,
        guard=_admins_only,
        response=HISTORY_PAGE,
        tags=("history",),
        etag=True,
    )
    def get(self, query):
        return services().history.of_all(
            current_user(), slug=query.get("slug"), cursor=query["cursor"], limit=query["limit"]
        )
