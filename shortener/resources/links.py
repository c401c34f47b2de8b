"""/api/v1.0/links and /api/v1.0/links/<slug>."""

from __future__ import annotations

from dataclasses import replace

from flask_restful import Resource
from marshmallow import ValidationError

from ..auth import current_user
from ..schemas.link_filters import LinkListQuery, link_filter_of
from ..schemas.links import LinkSchema, check_slug
from ..schemas.new_link import NewLinkSchema
from ..schemas.pages import page_of
from ..services.errors import InvalidInput
from ..services.forwarding import UTM_FIELDS
from ..services.links import KEEP, LinkFields
from ..services.tokens import LINKS_READ, LINKS_WRITE
from .http import services
from .operations import operation

LINK_LINKS = {
    "getLink": "The link just written.",
    "updateLink": "Change some of its fields.",
    "replaceLink": "Replace it.",
    "deleteLink": "Delete it.",
    "listLinkHistory": "Its changes, newest first.",
}


def _fields(body: dict) -> LinkFields:
    return LinkFields(
        body["target"],
        body["title"],
        body["redirect_status"],
        crawlable=body["crawlable"],
        rules=body["rules"],  # rules and A/B variants (services/rules.py)
        variants=body["variants"],
        tags=body["tags"],  # services/tags.py
    )


def _with_lifetime(fields: LinkFields, body: dict) -> LinkFields:
    """The lifetime and cap fields of a POST or PUT body (all have defaults: None), and the
    forwarding, UTM and password fields (a PUT without a password keeps the stored one)."""
    return replace(
        fields,
        valid_since=body["valid_since"],
        valid_until=body["valid_until"],
        max_visits=body["max_visits"],
        expired_target=body["expired_target"],
        forward_query=body["forward_query"],
        **{name: body[name] for name in UTM_FIELDS},
        password=body.get("password", KEEP),
    )


def link_fields(body: dict) -> LinkFields:
    """A POST or PUT body, as LinkSchema loaded it, as the fields the link service writes;
    shortener import turns each row into fields here too (cli.py)."""
    return _with_lifetime(_fields(body), body)


def _path_slug(body: dict, slug: str) -> None:
    """The slug is part of the URI: a body may repeat it, never change it; PUT checks it."""
    if "slug" in body and body["slug"] != slug:
        raise InvalidInput(
            "The slug cannot be changed; it is part of the link's URI.",
            errors={"slug": ["Cannot be changed; create a new link instead."]},
        )
    body.pop("slug", None)


class LinkCollection(Resource):
    @operation(
        "listLinks",
        "Your links (admins: everyone's), filtered and sorted, newest first by default",
        scope=LINKS_READ,
        query=LinkListQuery,
        response=page_of("links", LinkSchema),
        tags=("links",),
        etag=True,
    )
    def get(self, query):
        return services().links.list(
            current_user(),
            link_filter_of(query),
            sort=query["sort"],
            cursor=query["cursor"],
            limit=query["limit"],
        )

    @operation(
        "createLink",
        "Create a link at a slug of yours, or at a generated one",
        scope=LINKS_WRITE,
        body=NewLinkSchema,
        response=LinkSchema,
        status=201,
        other_statuses={
            200: "find_if_exists: your existing link with the same target and options."
        },
        headers=("Location",),
        errors=(409,),
        links=LINK_LINKS,
        tags=("links",),
        etag=True,
        idempotent=True,
    )
    def post(self, body):
        if body["find_if_exists"]:  # README "Deduplication"
            link, created = services().links.find_or_create(
                current_user(), link_fields(body), slug=body.get("slug")
            )
            return link, 201 if created else 200
        return services().links.create(
            current_user(), _with_lifetime(_fields(body), body), slug=body.get("slug")
        )


class LinkItem(Resource):
    @operation(
        "getLink",
        "A link",
        scope=LINKS_READ,
        response=LinkSchema,
        errors=(404,),
        tags=("links",),
        etag=True,
    )
    def get(self, slug):
        return services().links.get(current_user(), slug)

    @operation(
        "replaceLink",
        "Replace a link's fields, or create the link at this slug",
        scope=LINKS_WRITE,
        body=LinkSchema,
        response=LinkSchema,
        other_statuses={201: "Created at this slug."},
        errors=(409,),
        links=LINK_LINKS,
        tags=("links",),
        etag=True,
    )
    def put(self, slug, body, precondition):
        _path_slug(body, slug)
        try:
            check_slug(slug)
        except ValidationError as error:
            raise InvalidInput(
                "The link has invalid fields.", errors={"slug": error.messages}
            ) from None
        link, created = services().links.replace(
            current_user(), slug, _with_lifetime(_fields(body), body), precondition=precondition
        )
        return link, 201 if created else 200

    @operation(
        "updateLink",
        "Change some of a link's fields",
        scope=LINKS_WRITE,
        body=LinkSchema,
        partial=True,
        response=LinkSchema,
        errors=(404,),
        tags=("links",),
        etag=True,
    )
    def patch(self, slug, body, precondition):
        _path_slug(body, slug)
        return services().links.update(current_user(), slug, body, precondition=precondition)

    @operation(
        "deleteLink",
        "Delete a link and its visits",
        scope=LINKS_WRITE,
        status=204,
        errors=(404,),
        tags=("links",),
        etag=True,
    )
    def delete(self, slug, precondition):
        services().links.delete(current_user(), slug, precondition=precondition)
