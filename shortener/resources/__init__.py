"""The HTTP API under /api/v1.0/: thin Flask-RESTful Resources over the services."""

from __future__ import annotations

import re

from flask import Flask
from flask_restful import Api
from werkzeug.routing import BaseConverter

from ..problems import render_error
from .batches import LinkBatch
from .export import LinkExport
from .history import AllHistory, LinkHistory
from .links import LinkCollection, LinkItem
from .openapi import OpenApiDocument
from .qr import LinkQrCode
from .root import Root
from .rules import LinkRules
from .tags import TagCollection, TagItem
from .tokens import TokenCollection, TokenItem
from .users import UserCollection, UserItem
from .visits import AllStats, LinkStats, LinkVisits
from .webhooks import WebhookCollection, WebhookDeliveries, WebhookItem

API_PREFIX = "/api/v1.0"


def _any_segment_but(names: list[str]) -> type[BaseConverter]:
    """A path segment other than ``names``. Werkzeug answers OPTIONS and 405 with the methods
    of every rule that matches a path: with a plain ``<slug>``, OPTIONS /links/batch also
    offered GET and PUT, the link's."""

    class Segment(BaseConverter):
        regex = f"(?!(?:{'|'.join(map(re.escape, names))})$)[^/]+"

    return Segment


class ProblemApi(Api):
    """Routes every error raised inside a Resource to the one problem+json renderer.

    Flask-RESTful's own handle_error answers ``{"message": ...}`` and never reaches Flask's
    error handlers; it also re-raises under TESTING, hiding that in tests.
    """

    def handle_error(self, e: Exception):
        return render_error(e)


def init_app(app: Flask) -> None:
    api = ProblemApi(app, prefix=API_PREFIX)
    api.add_resource(Root, "/", endpoint="root", strict_slashes=False)
    api.add_resource(LinkCollection, "/links", endpoint="links")
    # Fixed names beside /links/<slug>: reserved slugs (shortener/__init__.py), which the
    # link's route does not match either (its converter), so their OPTIONS and 405 answers
    # name their own methods only.
    beside = {"export": (LinkExport, "links_export"), "batch": (LinkBatch, "links_batch")}
    for name, (resource, endpoint) in beside.items():
        api.add_resource(resource, f"/links/{name}", endpoint=endpoint)
    app.url_map.converters["link_slug"] = _any_segment_but(sorted(beside))
    api.add_resource(LinkItem, "/links/<link_slug:slug>", endpoint="link")
    api.add_resource(UserCollection, "/users", endpoint="users")
    api.add_resource(UserItem, "/users/<string:username>", endpoint="user")
    api.add_resource(LinkVisits, "/links/<string:slug>/visits", endpoint="link_visits")
    api.add_resource(LinkStats, "/links/<string:slug>/stats", endpoint="link_stats")
    api.add_resource(LinkQrCode, "/links/<string:slug>/qr", endpoint="link_qr")
    api.add_resource(LinkRules, "/links/<string:slug>/rules", endpoint="link_rules")
    api.add_resource(LinkHistory, "/links/<string:slug>/history", endpoint="link_history")
    api.add_resource(AllStats, "/stats", endpoint="stats")
    api.add_resource(AllHistory, "/history", endpoint="history")
    api.add_resource(TagCollection, "/tags", endpoint="tags")
    api.add_resource(TagItem, "/tags/<string:name>", endpoint="tag")
    api.add_resource(TokenCollection, "/tokens", endpoint="tokens")
    api.add_resource(TokenItem, "/tokens/<string:token_id>", endpoint="token")
    api.add_resource(WebhookCollection, "/webhooks", endpoint="webhooks")
    api.add_resource(WebhookItem, "/webhooks/<string:webhook_id>", endpoint="webhook")
    api.add_resource(
        WebhookDeliveries, "/webhooks/<string:webhook_id>/deliveries", endpoint="webhook_deliveries"
    )
    api.add_resource(OpenApiDocument, "/openapi.json", endpoint="openapi")
