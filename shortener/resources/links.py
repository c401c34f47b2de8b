"""/api/v1.0/links and /api/v1.0/links/<slug>."""

from __future__ import annotations

from flask import Response

from ..auth import current_user
from ..schemas.links import LinkListQuery, LinkSchema
from ..schemas.pages import page_schema
from ..services.errors import InvalidInput
from ..services.links import LinkFields
from ..services.tokens import LINKS_READ, LINKS_WRITE
from .authenticated import AuthenticatedResource
from .http import given_query, json_response, load_body, load_query, own_hosts, page_response
from .http import services as get_services

LINK = LinkSchema()
LINK_PAGE = page_schema("links", LinkSchema)
LINK_LIST_QUERY = LinkListQuery()


def _created(link) -> Response:
    body = LINK.dump(link)
    return json_response(body, 201, {"Location": body["uri"]})


def _refuse_slug_change(data: dict, slug: str) -> None:
    if "slug" in data and data["slug"] != slug:
        raise InvalidInput(
            "The slug cannot be changed; it is part of the link's URI.",
            errors={"slug": ["Cannot be changed; create a new link instead."]},
        )


class LinkCollection(AuthenticatedResource):
    # A create-only token (links:write alone) can POST but not list.
    required_scopes = {"get": LINKS_READ, "post": LINKS_WRITE}

    def get(self) -> Response:
        query = load_query(LINK_LIST_QUERY)
        page = get_services().links.list(
            current_user(), owner=query["owner"], cursor=query["cursor"], limit=query["limit"]
        )
        return page_response(
            page,
            plural="links",
            schema=LINK_PAGE,
            endpoint="links",
            params=given_query("owner", "limit", "cursor"),
        )

    def post(self) -> Response:
        data = load_body(LINK)
        link = get_services().links.create(
            current_user(),
            LinkFields(data["target"], data["title"], data["redirect_status"]),
            slug=data.get("slug"),
            own_hosts=own_hosts(),
        )
        return _created(link)


class LinkItem(AuthenticatedResource):
    required_scopes = {
        "get": LINKS_READ,
        "put": LINKS_WRITE,
        "patch": LINKS_WRITE,
        "delete": LINKS_WRITE,
    }

    def get(self, slug: str) -> Response:
        return json_response(LINK.dump(get_services().links.get(current_user(), slug)))

    def put(self, slug: str) -> Response:
        data = load_body(LINK)
        _refuse_slug_change(data, slug)
        link, created = get_services().links.replace(
            current_user(),
            slug,
            LinkFields(data["target"], data["title"], data["redirect_status"]),
            own_hosts=own_hosts(),
        )
        return _created(link) if created else json_response(LINK.dump(link))

    def patch(self, slug: str) -> Response:
        data = load_body(LINK, partial=True)
        _refuse_slug_change(data, slug)
        data.pop("slug", None)
        link = get_services().links.update(current_user(), slug, data, own_hosts=own_hosts())
        return json_response(LINK.dump(link))

    def delete(self, slug: str) -> Response:
        get_services().links.delete(current_user(), slug)
        return Response(status=204)
