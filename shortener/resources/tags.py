"""/api/v1.0/tags and /api/v1.0/tags/<name>: the caller's tags (an admin's: ``owner=``'s)."""

from __future__ import annotations

from flask_restful import Resource

from ..auth import current_user
from ..schemas.pages import page_of
from ..schemas.tags import TagListQuery, TagOwnerQuery, TagRenameSchema, TagSchema
from ..services.tokens import LINKS_READ, LINKS_WRITE
from .http import services
from .operations import operation


class TagCollection(Resource):
    @operation(
        "listTags",
        "Your tags (admins: owner='s), by name, with how many links carry each",
        description="Only tags at least one link carries. Each tag's 'links' is the "
        "collection of the links carrying it.",
        scope=LINKS_READ,
        query=TagListQuery,
        response=page_of("tags", TagSchema),
        tags=("tags",),
        etag=True,
    )
    def get(self, query):
        return services().tags.list(
            current_user(), owner=query["owner"], cursor=query["cursor"], limit=query["limit"]
        )


class TagItem(Resource):
    @operation(
        "renameTag",
        "Rename a tag on every link carrying it; onto another of your tags, merge the two",
        description="Names compare case-insensitively: a new spelling of the same name just "
        "respells it. Each link carrying the tag gets a new version (and ETag).",
        scope=LINKS_WRITE,
        query=TagOwnerQuery,
        body=TagRenameSchema,
        response=TagSchema,
        errors=(404,),
        tags=("tags",),
    )
    def patch(self, name, query, body):
        return services().tags.rename(current_user(), name, body["name"], owner=query["owner"])

    @operation(
        "deleteTag",
        "Take a tag off every link carrying it",
        description="The links stay; each gets a new version (and ETag).",
        scope=LINKS_WRITE,
        query=TagOwnerQuery,
        status=204,
        errors=(404,),
        tags=("tags",),
    )
    def delete(self, name, query):
        services().tags.delete(current_user(), name, owner=query["owner"])
