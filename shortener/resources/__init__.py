"""The HTTP API under /api/v1.0/: thin Flask-RESTful Resources over the services."""

from __future__ import annotations

from flask import Flask
from flask_restful import Api

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
    # Before /links/<slug>; "export" is a reserved slug (shortener/__init__.py).
    api.add_resource(LinkExport, "/links/export", endpoint="links_export")
    api.add_resource(LinkBatch, "/links/batch", endpoint="links_batch")
    api.add_resource(LinkItem, "/links/<string:slug>", endpoint="link")
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
