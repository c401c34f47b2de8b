"""/api/v1.0/links/<slug>/rules: a link's redirect rules, read and replaced as a whole.

The same list as the link's ``rules`` field, so a client can manage rules without sending
the link again. The answer carries the link's ETag: a PUT with ``If-Match`` of the link's tag
(from either URI) replaces the rules only if the link did not change meanwhile.
"""

from __future__ import annotations

from flask_restful import Resource

from ..auth import current_user
from ..schemas.rules import RulesSchema
from ..services.tokens import LINKS_READ, LINKS_WRITE
from .http import services
from .operations import operation


class LinkRules(Resource):
    @operation(
        "getLinkRules",
        "A link's redirect rules",
        scope=LINKS_READ,
        response=RulesSchema,
        errors=(404,),
        tags=("links",),
        etag=True,
    )
    def get(self, slug):
        return services().links.get(current_user(), slug)

    @operation(
        "replaceLinkRules",
        "Replace a link's redirect rules (the whole list; [] removes them)",
        scope=LINKS_WRITE,
        body=RulesSchema,
        response=RulesSchema,
        errors=(404,),
        tags=("links",),
        etag=True,
    )
    def put(self, slug, body, precondition):
        return services().links.set_rules(
            current_user(), slug, body["rules"], precondition=precondition
        )
